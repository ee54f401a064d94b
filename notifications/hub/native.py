"""The native protocol of `/ws/notifications/`: one JSON object per text frame (see docs/protocol.md).

Only the wire format lives here: parsing client frames into `HubSession`
commands and rendering the session's client messages as frames. Authentication,
presence, groups, replay and the meaning of every command are in
`session.py`, shared with the SignalR endpoint.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime

from notifications.hub.client_messages import (
    ActionPerformed,
    ClientMessage,
    Hello,
    NotificationMessage,
    NotificationResolved,
    NotificationsRead,
    Pong,
    ReplayComplete,
    RoomJoined,
    RoomLeft,
    RoomPresence,
    RoomTyping,
    UnreadCount,
)
from notifications.hub.closes import CloseReason
from notifications.hub.consumer import HubConsumer
from notifications.hub.errors import HubError
from notifications.hub.native_frames import ServerFrame
from notifications.hub.session import HubSession
from notifications.layer_messages import NotificationPayload

PROTOCOL_VERSION = 1

# Error codes of malformed frames (the session's own codes are on HubError).
INVALID_JSON = "invalid_json"
INVALID_MESSAGE = "invalid_message"
UNKNOWN_TYPE = "unknown_type"
UNSUPPORTED = "unsupported"

Command = Callable[[HubSession, dict], Awaitable[ClientMessage | None]]

# type -> (required fields, what it does)
# `ack` is not among them: acks do not wait in line (HubConsumer.acknowledge) and are answered with `acked`.
ACK = "ack"
COMMANDS: dict[str, tuple[tuple[str, ...], Command]] = {
    "read": (("id",), lambda session, frame: session.mark_read(frame["id"])),
    "read_all": ((), lambda session, frame: session.mark_all_read()),
    "action": (
        ("id", "action"),
        lambda session, frame: session.perform_action(frame["id"], frame["action"], frame.get("comment")),
    ),
    "ping": ((), lambda session, frame: session.ping()),
    "subscribe": (("document_id",), lambda session, frame: session.subscribe(frame["document_id"])),
    "unsubscribe": (("document_id",), lambda session, frame: session.unsubscribe(frame["document_id"])),
    "typing": (("document_id",), lambda session, frame: session.typing(frame["document_id"])),
}


def _time(value: datetime) -> str:
    return value.isoformat()


def render(message: ClientMessage) -> list[dict]:
    """The frames that carry one client message in the native protocol."""
    match message:
        case Hello():
            return [
                {
                    "type": ServerFrame.HELLO,
                    "protocol": PROTOCOL_VERSION,
                    "user": message.user.as_dict(),
                    "departments": message.department_ids,
                    "unread_count": message.unread_count,
                    "server_time": _time(message.server_time),
                    "token_expires_at": _time(message.token_expires_at),
                    "heartbeat": message.heartbeat_seconds,
                }
            ]
        case NotificationMessage():
            return [{"type": ServerFrame.NOTIFICATION, **message.notification, "replayed": message.replayed}]
        case ReplayComplete():
            return [{"type": ServerFrame.REPLAY_COMPLETE, "count": message.count}]
        case NotificationsRead():
            frames = [{"type": ServerFrame.READ, "id": notification_id} for notification_id in message.ids]
            return [*frames, {"type": ServerFrame.UNREAD_COUNT, "count": message.unread_count}]
        case NotificationResolved():
            return [
                {
                    "type": ServerFrame.RESOLVED,
                    "id": message.id,
                    "resolution": message.resolution,
                    "resolved_at": message.resolved_at,
                    "unread_count": message.unread_count,
                }
            ]
        case UnreadCount():
            return [{"type": ServerFrame.UNREAD_COUNT, "count": message.count, "request": message.request}]
        case ActionPerformed():
            return [
                {
                    "type": ServerFrame.ACTION_RESULT,
                    "id": message.notification_id,
                    "action": message.action,
                    "outcome": message.outcome,
                    "performed_at": _time(message.performed_at),
                    "already_performed": message.already_performed,
                }
            ]
        case Pong():
            return [{"type": ServerFrame.PONG, "server_time": _time(message.server_time)}]
        case RoomJoined():
            members = [member.as_dict() for member in message.members]
            return [{"type": ServerFrame.SUBSCRIBED, "document_id": message.document_id, "members": members}]
        case RoomLeft():
            return [{"type": ServerFrame.UNSUBSCRIBED, "document_id": message.document_id}]
        case RoomPresence():
            return [
                {
                    "type": ServerFrame.PRESENCE,
                    "document_id": message.document_id,
                    "user": message.user.as_dict(),
                    "state": message.state,
                }
            ]
        case RoomTyping():
            return [{"type": ServerFrame.TYPING, "document_id": message.document_id, "user": message.user.as_dict()}]
    raise TypeError(f"No native frame for {message!r}")


def error_frame(code: str, message: str, request_type: str | None = None) -> dict:
    frame = {"type": ServerFrame.ERROR, "code": code, "message": message}
    if request_type:
        frame["request"] = request_type
    return frame


class NativeHubConsumer(HubConsumer):
    """`/ws/notifications/`: the hub over plain JSON frames."""

    protocol_name = "native"

    async def connect(self) -> None:
        """Runs on the handshake: accept, then authenticate, hello, replay (while frames are read)."""
        self._acked_ids: list = []
        await super().connect()
        self.start_session()

    async def receive_frame(self, text_data: str | None, bytes_data: bytes | None) -> None:
        """Runs for every inbound frame that passed the size and flood guards."""
        if text_data is None:
            await self.send_frame(error_frame(UNSUPPORTED, "Binary frames are not supported; send JSON text."))
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.send_frame(error_frame(INVALID_JSON, "A frame must be one JSON object."))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send_frame(error_frame(INVALID_MESSAGE, 'A frame must be a JSON object with a "type".'))
            return
        request_type = frame["type"]
        if request_type == ACK:
            if frame.get("id") is None:
                await self.send_frame(error_frame(HubError.INVALID, "ack needs 'id'.", ACK))
                return
            self.acknowledge(frame["id"], ACK)
            return
        if request_type not in COMMANDS:
            known = ", ".join(sorted([ACK, *COMMANDS]))
            await self.send_frame(
                error_frame(UNKNOWN_TYPE, f"Unknown type {request_type[:64]!r}; expected one of {known}.")
            )
            return
        required, command = COMMANDS[request_type]
        missing = [name for name in required if frame.get(name) is None]
        if missing:
            message = f"{request_type} needs {', '.join(repr(name) for name in missing)}."
            await self.send_frame(error_frame(HubError.INVALID, message, request_type))
            return
        await self.perform(command(self.session, frame), request=request_type)

    async def receive_acks_only(self, text_data: str | None, bytes_data: bytes | None) -> None:
        """Runs for a frame that arrived after the server decided to close: acks are still written."""
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except (ValueError, RecursionError):
            return
        if isinstance(frame, dict) and frame.get("type") == ACK and frame.get("id") is not None:
            self.acknowledge(frame["id"], ACK)

    async def confirm_ack(self, notification_id: object, request: str | None) -> None:
        """One `acked` frame names every ack written by the same database write (they are answered together)."""
        self._acked_ids.append(notification_id)
        if len(self._acked_ids) > 1:
            return  # the first of this batch sends it
        await asyncio.sleep(0)  # the other acks of the same write resume first, and join
        ids, self._acked_ids = self._acked_ids, []
        await self.send_frame({"type": ServerFrame.ACKED, "ids": ids})

    async def send_client_message(self, message: ClientMessage) -> None:
        for frame in render(message):
            await self.send_frame(frame)

    async def send_error(self, error: HubError, request: str | None = None) -> None:
        await self.send_frame(error_frame(error.code, error.message, request))

    async def send_close_notice(self, reason: CloseReason) -> None:
        await self.send_frame(error_frame(reason.error_code, reason.reason))

    @staticmethod
    def render_live_notification(payload: NotificationPayload) -> str:
        return _encode(render(NotificationMessage(notification=payload, replayed=False))[0])

    async def send_frame(self, frame: dict) -> None:
        await self.send(text_data=_encode(frame))


def _encode(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))
