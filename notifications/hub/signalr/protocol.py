"""The SignalR JSON hub protocol, versions 0 to 2, without sockets: framing, handshake, messages, rendering.

A message is a JSON object followed by the record separator 0x1E, in text
frames; a frame may hold several records and a record may span frames
(`RecordReader`). The first record of a connection is the handshake
(`{"protocol": "json", "version": 1}`), answered with `{}` or `{"error": ...}`.
Then both sides exchange typed messages (`MessageType`). What the server sends
has exactly the fields the clients expect: no nulls, no extra keys (pysignalr
builds dataclasses from them and fails on unknown fields).

How the hub's client messages look here are decided in `render_message` (notifications
become invocations named after their event, e.g. `DocumentApproved`) and
`render_result` (what a hub method's completion carries).
"""

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from notifications.hub.client_messages import (
    ActionPerformed,
    ClientMessage,
    NotificationMessage,
    NotificationResolved,
    NotificationsRead,
    RoomJoined,
    RoomLeft,
    RoomPresence,
    RoomTyping,
)
from notifications.layer_messages import NotificationPayload

RECORD_SEPARATOR = "\x1e"
PROTOCOL_NAME = "json"
# The .NET server accepts any version up to 2 (2 only matters for stateful reconnect, which is not offered);
# signalrcore sends 0.
SUPPORTED_VERSIONS = range(3)

# Names of the server-to-client invocations that are not notifications (API publishers may not use them as
# event names: notifications/reserved.py).
NOTIFICATIONS_READ_TARGET = "NotificationsRead"
NOTIFICATION_RESOLVED_TARGET = "NotificationResolved"
DOCUMENT_PRESENCE_TARGET = "DocumentPresence"
DOCUMENT_TYPING_TARGET = "DocumentTyping"
NON_NOTIFICATION_TARGETS = (
    NOTIFICATIONS_READ_TARGET,
    NOTIFICATION_RESOLVED_TARGET,
    DOCUMENT_PRESENCE_TARGET,
    DOCUMENT_TYPING_TARGET,
)

# Keys of a notification's argument the server sets (`notification_argument`): its own, which data never replaces,
# and the defaults it fills in when data lacks them (the workflow events put both in their data; API publishers
# may put neither there: notifications/reserved.py).
NOTIFICATION_OWN_KEYS = ("notificationId", "title", "body", "actions")
NOTIFICATION_DEFAULT_KEYS = ("timestamp", "documentId")


class MessageType(IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8  # stateful reconnect only (never offered)
    SEQUENCE = 9


class ProtocolViolation(Exception):
    """A record the protocol does not allow; the connection cannot continue. The message is for the client."""


class HandshakeRefused(Exception):
    """The handshake asks for something this server does not speak; the message is the .NET server's text."""


class RecordTooLarge(Exception):
    """An unterminated record grew past the limit."""


class RecordReader:
    """Splits inbound text into records, keeping an unterminated tail until the frame that completes it."""

    def __init__(self, *, max_pending_chars: int) -> None:
        self.max_pending_chars = max_pending_chars
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        """The records completed by `text`, in order (empty ones skipped); raises `RecordTooLarge`."""
        *records, self._pending = (self._pending + text).split(RECORD_SEPARATOR)
        if len(self._pending) > self.max_pending_chars:
            self._pending = ""
            raise RecordTooLarge
        return [record for record in records if record.strip()]


def encode(message: dict) -> str:
    """One record: compact JSON and the separator."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False) + RECORD_SEPARATOR


def _json_object(record: str, what: str) -> dict:
    try:
        value = json.loads(record)
    except (ValueError, RecursionError):
        raise ProtocolViolation(f"The {what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ProtocolViolation(f"The {what} must be a JSON object.")
    return value


# --- Handshake ------------------------------------------------------------------------------------------------


def parse_handshake(record: str) -> int:
    """The protocol version a handshake request asks for; raises `HandshakeRefused`."""
    try:
        request = _json_object(record, "handshake request")
    except ProtocolViolation as violation:
        raise HandshakeRefused(str(violation)) from None
    protocol, version = request.get("protocol"), request.get("version")
    if not isinstance(protocol, str) or isinstance(version, bool) or not isinstance(version, int):
        raise HandshakeRefused('The handshake request must be {"protocol": "json", "version": 1}.')
    if protocol != PROTOCOL_NAME:
        raise HandshakeRefused(f"The protocol '{protocol[:64]}' is not supported.")
    if version not in SUPPORTED_VERSIONS:
        raise HandshakeRefused(f"The server does not support version {version} of the 'json' protocol.")
    return version


HANDSHAKE_ACCEPTED: dict = {}


def handshake_refusal(error: str) -> dict:
    return {"error": error}


# --- Messages from the client ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """A client's call of a hub method (type 1) or stream method (type 4)."""

    target: str
    arguments: list
    invocation_id: str | None  # None: the client expects no completion
    stream_ids: list


def parse_message(record: str) -> dict:
    """A client message with an integer `type`; raises `ProtocolViolation`."""
    message = _json_object(record, "message")
    kind = message.get("type")
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise ProtocolViolation('A message needs an integer "type".')
    return message


def parse_invocation(message: dict) -> Invocation:
    """The fields of an Invocation or StreamInvocation message; raises `ProtocolViolation`."""
    target = message.get("target")
    if not isinstance(target, str) or not target:
        raise ProtocolViolation('An invocation needs a non-empty string "target".')
    invocation_id = message.get("invocationId")
    if invocation_id is not None and (not isinstance(invocation_id, str) or not invocation_id):
        raise ProtocolViolation('"invocationId" must be a non-empty string.')
    arguments = message.get("arguments", [])
    if not isinstance(arguments, list):
        raise ProtocolViolation('"arguments" must be an array.')
    stream_ids = message.get("streamIds") or []
    if not isinstance(stream_ids, list):
        raise ProtocolViolation('"streamIds" must be an array.')
    return Invocation(target=target, arguments=arguments, invocation_id=invocation_id, stream_ids=stream_ids)


# --- Messages to the client -------------------------------------------------------------------------------------

PING: dict = {"type": MessageType.PING}


def invocation(target: str, argument: object) -> dict:
    """A server-to-client call with one argument. No `invocationId` key at all: null breaks the JS client."""
    return {"type": MessageType.INVOCATION, "target": target, "arguments": [argument]}


def completion(invocation_id: str, *, result: object = None, error: str | None = None) -> dict:
    """The answer to an invocation: `error`, or `result` (left out when None: the call returned nothing)."""
    message = {"type": MessageType.COMPLETION, "invocationId": invocation_id}
    if error is not None:
        message["error"] = error
    elif result is not None:
        message["result"] = result
    return message


def close(*, error: str | None = None, allow_reconnect: bool = False) -> dict:
    """The server ends the connection: with `error` clients give up; with `allow_reconnect` they reconnect."""
    message: dict[str, Any] = {"type": MessageType.CLOSE}
    if error is not None:
        message["error"] = error
    if allow_reconnect:
        message["allowReconnect"] = True
    return message


# --- Client messages as SignalR sees them-------------------------------------------------------------------------


def notification_argument(notification: NotificationPayload) -> dict:
    """The object a `DocumentApproved`/`NewTask`/... handler receives, shaped as the ASP.NET hub sent it.

    The notification's data fields at the top level (`documentId`, `approvedBy`,
    `step`, ...), plus `notificationId` (what `AcknowledgeNotification` takes),
    `title` and `body`, which data never overrides. `timestamp` and
    `documentId` come from data when it has them (the workflow events always
    do), else from the notification (its creation time, its document).
    """
    data = notification.get("data")
    argument = dict(data) if isinstance(data, dict) else {}
    argument.setdefault("timestamp", notification["created_at"])
    if notification.get("document_id") is not None:
        argument.setdefault("documentId", notification["document_id"])
    argument.update(
        notificationId=notification["id"],
        title=notification["title"],
        body=notification["body"],
        actions=[
            {"id": action["id"], "label": action["label"], "requiresComment": action["requires_comment"]}
            for action in notification.get("actions", [])
        ],
    )
    return argument


def render_message(message: ClientMessage) -> dict | None:
    """The SignalR message that carries a client message, or None if SignalR clients get nothing for it.

    `Hello` and `ReplayComplete` have no SignalR counterpart: the ASP.NET hub
    said nothing on connect, and replayed notifications arrive as ordinary
    invocations before any live one.
    """
    match message:
        case NotificationMessage():
            return invocation(message.notification["event"], notification_argument(message.notification))
        case NotificationsRead():
            return invocation(
                NOTIFICATIONS_READ_TARGET, {"notificationIds": message.ids, "unreadCount": message.unread_count}
            )
        case NotificationResolved():
            argument = {
                "notificationId": message.id,
                "resolution": message.resolution,
                "resolvedAt": message.resolved_at,
                "unreadCount": message.unread_count,
            }
            return invocation(NOTIFICATION_RESOLVED_TARGET, argument)
        case RoomPresence():
            argument = {"documentId": message.document_id, "user": message.user.as_dict(), "state": message.state}
            return invocation(DOCUMENT_PRESENCE_TARGET, argument)
        case RoomTyping():
            argument = {"documentId": message.document_id, "user": message.user.as_dict()}
            return invocation(DOCUMENT_TYPING_TARGET, argument)
    return None


def render_result(reply: ClientMessage | None) -> object:
    """What a hub method's completion carries as `result` (None: no result, as for a .NET `Task` method)."""
    match reply:
        case RoomJoined():
            return {"documentId": reply.document_id, "members": [member.as_dict() for member in reply.members]}
        case RoomLeft():
            return {"documentId": reply.document_id}
        case ActionPerformed():
            return {
                "notificationId": reply.notification_id,
                "action": reply.action,
                "outcome": reply.outcome,
                "performedAt": reply.performed_at.isoformat(),
                "alreadyPerformed": reply.already_performed,
            }
    return None
