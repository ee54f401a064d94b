"""The only module that talks to the channel layer.

It names the groups (from integer ids only, never from client input),
publishes to them, and adds and removes the hub's connections. Layer messages'
`type` names the consumer handler (`notification.created` →
`notification_created`). Publishing runs after the publishing transaction has
committed: a rolled-back change never reaches a socket.

Each group's members are the hub's *processes* (one `HubRouter` channel per
web process, `notifications.hub.router`), which hand a message to their own
connections in that group; so every message names the `group` it was sent to.

Layer messages (all handled by `notifications.hub.consumer.HubConsumer`):

- `notification.created` {notification: payload, recipient_ids?: [int]}: sent
  to `user.<id>` groups, or once to a `dept.<id>` group with the recipients it
  is meant for (every other member of that group ignores it).
- `notifications.read` {ids, unread_count, origin}: to `user.<id>`; `origin` is
  the channel name of the connection that asked, which is not told again.
- `room.presence` {document_id, user, state: join|leave, origin} and
  `room.typing` {document_id, user, origin}: to `doc.<id>`.
- `user.deactivated` {}: to `user.<id>`; the user's connections close with 4401.
"""

from collections.abc import Collection, Iterable, Mapping

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from notifications.models import Notification

NOTIFICATION_CREATED = "notification.created"
NOTIFICATIONS_READ = "notifications.read"
ROOM_PRESENCE = "room.presence"
ROOM_TYPING = "room.typing"
USER_DEACTIVATED = "user.deactivated"


def user_group(user_id: int) -> str:
    return f"user.{int(user_id)}"


def department_group(department_id: int) -> str:
    return f"dept.{int(department_id)}"


def document_group(document_id: int) -> str:
    return f"doc.{int(document_id)}"


def notification_payload(notification: Notification) -> dict:
    """The notification as every transport carries it: built once, at publish time."""
    return {
        "id": str(notification.pk),
        "event": notification.event,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "document_id": notification.document_id,
        "priority": notification.priority,
        "created_at": notification.created_at.isoformat(),
        "expires_at": notification.expires_at.isoformat() if notification.expires_at else None,
    }


def send_notification(
    *,
    payload: dict,
    user_ids: Iterable[int],
    department_recipients: Mapping[int, Collection[int]] | None = None,
) -> None:
    """Hand a notification to live connections (raises if the layer is down).

    `user_ids` are reached through their own groups; `department_recipients`
    maps a department id to the recipients reached through that department's
    group, so a large department costs one send instead of one per member.
    A connection shows a notification once, however often it is sent.
    """
    message = {"type": NOTIFICATION_CREATED, "notification": payload}
    sends = [(user_group(user_id), message) for user_id in user_ids]
    for department_id, recipient_ids in (department_recipients or {}).items():
        sends.append((department_group(department_id), {**message, "recipient_ids": sorted(recipient_ids)}))
    _group_send_many(sends)


def notifications_read_on_commit(
    *, user_id: int, notification_ids: list[str], unread_count: int, origin: str | None = None
) -> None:
    """After commit, tell the user's connections (but `origin`) which notifications were read."""
    message = {
        "type": NOTIFICATIONS_READ,
        "ids": notification_ids,
        "unread_count": unread_count,
        "origin": origin,
    }

    def send_after_commit() -> None:
        _group_send_many([(user_group(user_id), message)])

    transaction.on_commit(send_after_commit, robust=True)


def user_deactivated_on_commit(*, user_id: int) -> None:
    """After commit, have the user's connections close (the user may no longer be notified)."""

    def send_after_commit() -> None:
        _group_send_many([(user_group(user_id), {"type": USER_DEACTIVATED})])

    transaction.on_commit(send_after_commit, robust=True)


def _group_send_many(sends: list[tuple[str, dict]]) -> None:
    if not sends:
        return

    async def send_all() -> None:
        for group, message in sends:
            await _group_send(group, message)

    async_to_sync(send_all)()


async def _group_send(group: str, message: dict) -> None:
    await get_channel_layer().group_send(group, {**message, "group": group})


# --- The hub's side: its process channel, group membership and room events (async, on the hub's loop) ---


def group_expiry_seconds() -> float:
    """After how long without a `groups_join` the layer forgets a group member."""
    return float(get_channel_layer().group_expiry)


async def layer_server_ids() -> tuple[str, ...]:
    """The run ids of the layer's Redis servers: a new one means a restart (or failover) lost every group."""
    layer = get_channel_layer()
    ids = []
    for index in range(layer.ring_size):
        info = await layer.connection(index).info("server")
        ids.append(info["run_id"])
    return tuple(ids)


async def process_channel_new() -> str:
    """A new channel for this process's `HubRouter`."""
    return await get_channel_layer().new_channel(prefix="hub")


async def process_channel_receive(channel_name: str) -> dict:
    """The next message for the process's `HubRouter` (raises if the layer is down)."""
    return await get_channel_layer().receive(channel_name)


async def groups_join(channel_name: str, groups: Iterable[str]) -> None:
    """Add a channel to groups, or refresh its membership (channels-redis forgets members after `group_expiry`)."""
    layer = get_channel_layer()
    for group in groups:
        await layer.group_add(group, channel_name)


async def groups_leave(channel_name: str, groups: Iterable[str]) -> None:
    layer = get_channel_layer()
    for group in groups:
        await layer.group_discard(group, channel_name)


async def room_presence_send(*, document_id: int, user: dict, state: str, origin: str) -> None:
    """Tell a document room that a user joined or left it."""
    await _group_send(
        document_group(document_id),
        {"type": ROOM_PRESENCE, "document_id": document_id, "user": user, "state": state, "origin": origin},
    )


async def room_typing_send(*, document_id: int, user: dict, origin: str) -> None:
    """Tell a document room that a user is typing."""
    await _group_send(
        document_group(document_id), {"type": ROOM_TYPING, "document_id": document_id, "user": user, "origin": origin}
    )
