"""Where a browser handshake may come from: the hub's Origin rule, as ASGI middleware.

A handshake that carries an `Origin` header must match `WS_ALLOWED_ORIGINS`;
one without (native apps, servers) passes, since it must still authenticate
with a token. (Channels' own validators refuse a missing Origin, which would
shut out every non-browser client.) A refused handshake gets HTTP 403: the
application is never started for it.

Entries of `WS_ALLOWED_ORIGINS`:
- a full origin (`https://app.example.com`, `http://localhost:3000`) matches exactly
  that scheme, host and port;
- a host pattern as in `ALLOWED_HOSTS` (`example.com`, `.example.com`, `*`) matches
  that host with any scheme and port (the default is `ALLOWED_HOSTS` itself).
"""

from collections.abc import Iterable
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _normalized(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an origin, lower-cased, default port dropped; None if it is not one."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    if port == DEFAULT_PORTS.get(parts.scheme):
        port = None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, host, port


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """Whether a handshake's Origin header value is acceptable (None: no header, allowed)."""
    if origin is None:
        return True
    normalized = _normalized(origin)
    if normalized is None:  # "null" (sandboxed pages, file://) and garbage
        return False
    host = normalized[1]
    for entry in allowed:
        entry = entry.strip().lower()
        if "://" in entry:
            if _normalized(entry) == normalized:
                return True
        elif entry == "*" or is_same_domain(host, entry):
            return True
    return False


class OriginGuard:
    """ASGI middleware: refuse WebSocket handshakes from origins not in `WS_ALLOWED_ORIGINS` (HTTP 403)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origins = [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"origin"]
            if not all(origin_allowed(origin, settings.WS_ALLOWED_ORIGINS) for origin in origins):
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
