"""Every message that travels the channel layer, with its exact fields: built here, sent by `layer`.

A layer message goes from one process to the hub's processes (their `HubRouter`, notifications/hub/router.py),
which hand it to their connections; `HubSession` turns it into what its client is told (a client message,
notifications/hub/client_messages.py). `type` names the handler (`notification.created` →
`HubConsumer.notification_created`); `group` is the group it was sent to, added by `layer` when it sends.
tests/notifications/test_layer_messages.py pins the fields of each.
"""

from typing import Literal, NotRequired, TypedDict

NOTIFICATION_CREATED = "notification.created"
NOTIFICATIONS_READ = "notifications.read"
NOTIFICATIONS_RESOLVED = "notifications.resolved"
ROOM_PRESENCE = "room.presence"
ROOM_TYPING = "room.typing"
USER_DEACTIVATED = "user.deactivated"
ROUTER_PING = "hub.router.ping"


class NotificationAction(TypedDict):
    """One thing a recipient may do from the notification (services/actions.py)."""

    id: str  # what a client performs: POST .../actions/<id>/, the `action` frame, PerformAction
    label: str  # the button's text
    requires_comment: bool  # the client asks for a comment first; performing without one is refused


class NotificationPayload(TypedDict):
    """A notification as every transport carries it (`layer.notification_payload`), built once at publish."""

    id: str
    event: str  # the kind of notification, e.g. NewTask
    title: str
    body: str
    data: dict
    document_id: int | None
    priority: str
    created_at: str  # ISO 8601
    expires_at: str | None
    actions: list[NotificationAction]  # what the recipient may do from it (services/actions.py); often none


class LayerUser(TypedDict):
    id: int
    username: str


class NotificationCreated(TypedDict):
    """To `user.<id>` groups; or once to a `dept.<id>` group, with the recipients it is for (the other members
    of that group ignore it)."""

    type: Literal["notification.created"]
    group: NotRequired[str]
    notification: NotificationPayload
    recipient_ids: NotRequired[list[int]]


class NotificationsRead(TypedDict):
    """To `user.<id>`: these were read; `origin` is the connection that asked, which is not told again."""

    type: Literal["notifications.read"]
    group: NotRequired[str]
    ids: list[str]
    unread_count: int
    origin: str | None


class ResolvedNotification(TypedDict):
    id: str
    resolution: str  # a Notification.Resolution
    resolved_at: str  # ISO 8601


class NotificationsResolved(TypedDict):
    """To `user.<id>`: the work these were about is done; every connection of the user drops them (a read one
    too: it may still be on screen). The user's unread count is now `unread_count`."""

    type: Literal["notifications.resolved"]
    group: NotRequired[str]
    notifications: list[ResolvedNotification]
    unread_count: int


class RoomPresence(TypedDict):
    """To `doc.<id>`: a user joined or left the document's room (`origin`: that connection)."""

    type: Literal["room.presence"]
    group: NotRequired[str]
    document_id: int
    user: LayerUser
    state: Literal["join", "leave"]
    origin: str


class RoomTyping(TypedDict):
    """To `doc.<id>`: a user is typing in the document's room."""

    type: Literal["room.typing"]
    group: NotRequired[str]
    document_id: int
    user: LayerUser
    origin: str


class UserDeactivated(TypedDict):
    """To `user.<id>`: the user may no longer be notified; their connections close with 4401."""

    type: Literal["user.deactivated"]
    group: NotRequired[str]


class RouterPing(TypedDict):
    """A process's `HubRouter` to its own channel, to measure how far behind its receive is (never handed on)."""

    type: Literal["hub.router.ping"]
    ping: int


LayerMessage = (
    NotificationCreated
    | NotificationsRead
    | NotificationsResolved
    | RoomPresence
    | RoomTyping
    | UserDeactivated
    | RouterPing
)


def notification_created(
    notification: NotificationPayload, *, recipient_ids: list[int] | None = None
) -> NotificationCreated:
    message: NotificationCreated = {"type": "notification.created", "notification": notification}
    if recipient_ids is not None:
        message["recipient_ids"] = recipient_ids
    return message


def notifications_read(*, ids: list[str], unread_count: int, origin: str | None) -> NotificationsRead:
    return {"type": "notifications.read", "ids": ids, "unread_count": unread_count, "origin": origin}


def notifications_resolved(*, notifications: list[ResolvedNotification], unread_count: int) -> NotificationsResolved:
    return {"type": "notifications.resolved", "notifications": notifications, "unread_count": unread_count}


def room_presence(*, document_id: int, user: LayerUser, state: Literal["join", "leave"], origin: str) -> RoomPresence:
    return {"type": "room.presence", "document_id": document_id, "user": user, "state": state, "origin": origin}


def room_typing(*, document_id: int, user: LayerUser, origin: str) -> RoomTyping:
    return {"type": "room.typing", "document_id": document_id, "user": user, "origin": origin}


def user_deactivated() -> UserDeactivated:
    return {"type": "user.deactivated"}


def router_ping(ping: int) -> RouterPing:
    return {"type": "hub.router.ping", "ping": ping}
