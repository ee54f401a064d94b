"""Presence pages: who is online now (with their protocols, processes and since when), the web processes, and per
user their live connections and their devices.

Read from the presence registry in Redis (`notifications.presence`): the list of who is online SCANs the users'
keys (like /metrics' `online_counts`), a few round trips per thousand users, paid only when an operator opens the
page; what a connection is (protocol, process, opening time) comes from its id, so it costs no extra read.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from notifications import presence
from notifications.console.dashboard import duration_text
from notifications.models import Device

# Rows on the list of who is online: enough for any screen, and the totals above it count everyone.
ONLINE_ROWS = 500


@dataclass(frozen=True)
class OnlineUser:
    username: str
    name: str
    connections: int
    protocols: str  # "native x2, signalr" (with a multiplication sign)
    processes: str
    since: datetime | None  # when their oldest live connection opened


@dataclass(frozen=True)
class LiveConnection:
    connection_id: str
    protocol: str
    process_id: str
    opened_at: datetime | None


def online_now(request: HttpRequest) -> HttpResponse:
    """Who is online now, and the web processes with their connections and how far behind each is."""
    connection_ids = presence.online_connection_ids()
    users = get_user_model().objects.filter(pk__in=connection_ids).only("username", "first_name", "last_name")
    online = sorted(
        (_online_user(user, connection_ids[user.pk]) for user in users), key=lambda row: row.name.casefold()
    )
    context = {
        **admin.site.each_context(request),
        "title": "Who is online",
        "online": online[:ONLINE_ROWS],
        "online_total": len(online),
        "connection_total": sum(row.connections for row in online),
        "processes": [
            {"process": process, "behind": duration_text(process.behind_seconds)}
            for process in presence.web_processes()
        ],
    }
    return TemplateResponse(request, "admin/console/presence.html", context)


def user_presence(request: HttpRequest, username: str) -> HttpResponse:
    """One user's live connections and devices."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise Http404(f"No user is named {username!r}.")
    connections = [
        _live_connection(connection_id) for connection_id in presence.live_connection_ids([user.pk]).get(user.pk, [])
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Presence of {user.get_full_name() or user.get_username()}",
        "person": user,
        "connections": sorted(
            connections, key=lambda connection: connection.opened_at.timestamp() if connection.opened_at else 0
        ),
        "devices": Device.objects.filter(user=user).order_by("-active", "-last_seen_at"),
    }
    return TemplateResponse(request, "admin/console/presence_user.html", context)


def _online_user(user, connection_ids: list[str]) -> OnlineUser:
    parts = [presence.parse_connection_id(connection_id) for connection_id in connection_ids]
    protocols = Counter(part.protocol or "unknown" for part in parts)
    opened = [part.opened_at for part in parts if part.opened_at is not None]
    return OnlineUser(
        username=user.get_username(),
        name=user.get_full_name() or user.get_username(),
        connections=len(parts),
        protocols=", ".join(
            f"{protocol} ×{count}" if count > 1 else protocol for protocol, count in sorted(protocols.items())
        ),
        processes=", ".join(sorted({part.process_id or "unknown" for part in parts})),
        since=min(opened) if opened else None,
    )


def _live_connection(connection_id: str) -> LiveConnection:
    parts = presence.parse_connection_id(connection_id)
    return LiveConnection(
        connection_id=connection_id,
        protocol=parts.protocol or "unknown",
        process_id=parts.process_id or "unknown",
        opened_at=parts.opened_at,
    )
