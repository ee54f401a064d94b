"""What the hub tells a client, before a protocol renders it (native.py: JSON frames; signalr/: invocations).

`HubSession` returns these; it never builds a frame. "Layer messages" (notifications/layer_messages.py) are what
travels between processes; these are what one connection's client is told.
"""

from dataclasses import dataclass
from datetime import datetime

from notifications.layer_messages import LayerUser, NotificationPayload


@dataclass(frozen=True)
class UserRef:
    id: int
    username: str

    def as_dict(self) -> LayerUser:
        return {"id": self.id, "username": self.username}


@dataclass(frozen=True)
class Hello:
    user: UserRef
    department_ids: list[int]
    unread_count: int
    server_time: datetime
    token_expires_at: datetime
    heartbeat_seconds: float


@dataclass(frozen=True)
class NotificationMessage:
    notification: NotificationPayload
    replayed: bool


@dataclass(frozen=True)
class ReplayComplete:
    count: int


@dataclass(frozen=True)
class NotificationsRead:
    """Another connection of this user read these; the user's unread count is now `unread_count`."""

    ids: list[str]
    unread_count: int


@dataclass(frozen=True)
class NotificationResolved:
    """The work this notification was about is done: drop it (or show it as done); the user's unread count is now
    `unread_count`."""

    id: str
    resolution: str
    resolved_at: str  # ISO 8601
    unread_count: int


@dataclass(frozen=True)
class UnreadCount:
    """The answer to this connection's own `read` / `read_all`: the user's unread total after it."""

    count: int
    request: str  # the command it answers, so a client tells it from another connection's read sync


@dataclass(frozen=True)
class ActionPerformed:
    """The answer to this connection's `action`: what performing it did (or did the first time: `already_performed`).
    Its other effects arrive as usual (a decided task's `resolved`, on every connection)."""

    notification_id: str
    action: str
    outcome: str
    performed_at: datetime
    already_performed: bool


@dataclass(frozen=True)
class Pong:
    server_time: datetime


@dataclass(frozen=True)
class RoomJoined:
    document_id: int
    members: list[UserRef]


@dataclass(frozen=True)
class RoomLeft:
    document_id: int


@dataclass(frozen=True)
class RoomPresence:
    document_id: int
    user: UserRef
    state: str  # "join" or "leave"


@dataclass(frozen=True)
class RoomTyping:
    document_id: int
    user: UserRef


ClientMessage = (
    Hello
    | NotificationMessage
    | ReplayComplete
    | NotificationsRead
    | NotificationResolved
    | UnreadCount
    | ActionPerformed
    | Pong
    | RoomJoined
    | RoomLeft
    | RoomPresence
    | RoomTyping
)
