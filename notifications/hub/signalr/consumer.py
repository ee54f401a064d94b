"""`SignalRHubConsumer`: the hub at `/hubs/workflow` for ASP.NET Core SignalR clients (JSON hub protocol).

A connection goes: accept → handshake record (within `SIGNALR_HANDSHAKE_TIMEOUT`)
→ `{}` → `start_session()` (authentication, groups, presence, then every
unacknowledged notification as an invocation) → hub method calls both ways.
What a hub method does is `HubSession`'s; this module only translates:

- hub methods, matched ignoring case as the .NET server does: see `HUB_METHODS`;
- a completion answers every invocation that has an `invocationId` (result or
  error text); one without an id gets nothing back, even when it fails;
- a Ping goes out after `SIGNALR_KEEPALIVE_INTERVAL` seconds without sending,
  and a client silent for `SIGNALR_CLIENT_TIMEOUT` seconds is disconnected;
- the connection ends with a Close message: `allowReconnect` when trying again
  will work (server shutdown, client timeout, the token expired during the
  connection), else an `error` (refused token, flooding, a protocol
  violation), which clients report and do not retry.

The `id` query parameter from negotiation is ignored: every WebSocket is a new
connection (see the package docstring).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from django.conf import settings

from notifications.hub.client_messages import ClientMessage, NotificationMessage
from notifications.hub.closes import (
    FLOODING,
    MAX_MESSAGE_BYTES,
    MESSAGE_TOO_BIG,
    SERVER_SHUTDOWN,
    TOKEN_EXPIRED,
    TOO_SLOW,
    CloseReason,
)
from notifications.hub.consumer import HubConsumer, frame_size
from notifications.hub.errors import HubError
from notifications.hub.session import HubSession
from notifications.hub.signalr import protocol
from notifications.hub.signalr.protocol import MessageType
from notifications.layer_messages import NotificationPayload

logger = logging.getLogger(__name__)

NORMAL_CLOSURE = 1000
PROTOCOL_ERROR = 1002
# Records one frame may complete. Official clients may put many in one (the JavaScript client sent a replay
# page's 200 acks in a frame); each still counts against the flood budget, and past this a frame is refused
# whole, before any record in it runs.
MAX_RECORDS_PER_FRAME = 500

HANDSHAKE_CANCELED = CloseReason(NORMAL_CLOSURE, "Handshake was canceled.", "handshake_timeout")
CLIENT_TIMEOUT = CloseReason(NORMAL_CLOSURE, "no message from the client in time", "client_timeout")


def handshake_refused(text: str) -> CloseReason:
    return CloseReason(NORMAL_CLOSURE, text, "handshake_refused")


def protocol_violation(text: str) -> CloseReason:
    return CloseReason(PROTOCOL_ERROR, text, "protocol_error")


@dataclass(frozen=True)
class HubMethod:
    """A hub method a client may invoke: its name as documented, its parameters, the session command it runs."""

    name: str
    parameters: tuple[str, ...]
    command: Callable[..., Awaitable[ClientMessage | None]]  # an unbound HubSession method

    def arity_error(self, count: int) -> str | None:
        if count == len(self.parameters):
            return None
        expected = f"{len(self.parameters)} argument{'s' if len(self.parameters) != 1 else ''}"
        if self.parameters:
            expected += f" ({', '.join(self.parameters)})"
        return f"{self.name} takes {expected}, not {count}."


ACKNOWLEDGE = HubMethod("AcknowledgeNotification", ("notificationId",), HubSession.acknowledge)
# Lower-cased name -> method. AcknowledgeNotification is the ASP.NET WorkflowHub's; the others map the native commands.
HUB_METHODS: dict[str, HubMethod] = {
    method.name.lower(): method
    for method in (
        ACKNOWLEDGE,
        HubMethod("MarkRead", ("notificationId",), HubSession.mark_read),
        HubMethod("MarkAllRead", (), HubSession.mark_all_read),
        HubMethod("PerformAction", ("notificationId", "action", "comment"), HubSession.perform_action),
        HubMethod("SubscribeDocument", ("documentId",), HubSession.subscribe),
        HubMethod("UnsubscribeDocument", ("documentId",), HubSession.unsubscribe),
        HubMethod("Typing", ("documentId",), HubSession.typing),
    )
}


def close_error_text(reason: CloseReason) -> str:
    if reason.error_code == "unauthorized":
        return f"Unauthorized: {reason.reason}"
    return reason.reason


class SignalRHubConsumer(HubConsumer):
    """`/hubs/workflow`: the hub over the SignalR JSON hub protocol."""

    protocol_name = "signalr"
    handshake_done = False
    timer: asyncio.Task | None = None

    async def connect(self) -> None:
        """Runs on the WebSocket handshake: accept and wait for the SignalR handshake record."""
        await super().connect()
        self.records = protocol.RecordReader(max_pending_chars=MAX_MESSAGE_BYTES)
        self.last_sent = self.last_received = time.monotonic()
        self.timer = asyncio.create_task(self._cancel_handshake_after(settings.SIGNALR_HANDSHAKE_TIMEOUT))

    async def disconnect(self, code: int) -> None:
        """Runs when the socket has closed, from either side."""
        if self.timer is not None:
            self.timer.cancel()
        await super().disconnect(code)

    # Inbound ---------------------------------------------------------------------------------------------------

    async def receive_frame(self, text_data: str | None, bytes_data: bytes | None) -> None:
        """Runs for every inbound frame: split it into records and handle them in order."""
        self.last_received = time.monotonic()
        if text_data is None:  # .NET clients send even the JSON handshake in a binary frame when told "Binary"
            assert bytes_data is not None  # a frame is text or binary
            try:
                text_data = bytes_data.decode()
            except UnicodeDecodeError:
                await self.close_with(protocol_violation("Binary frames must hold UTF-8 JSON records."))
                return
        try:
            records = self.records.feed(text_data)
        except protocol.RecordTooLarge:
            await self.close_with(MESSAGE_TOO_BIG)
            return
        if len(records) > MAX_RECORDS_PER_FRAME:
            logger.info(
                "hub connection %s closed for flooding: %d records in a frame", self.connection_id, len(records)
            )
            await self.close_with(FLOODING)
            return
        for index, record in enumerate(records):
            if self.closing:
                return
            # Every record counts against the flood budget as a native frame does (the frame itself paid for
            # its first record when it arrived: HubConsumer.receive).
            if index and not self.session.admit_message():
                logger.info("hub connection %s closed for flooding", self.connection_id)
                await self.close_with(FLOODING)
                return
            if frame_size(record, None) > MAX_MESSAGE_BYTES:  # assembled from several frames
                await self.close_with(MESSAGE_TOO_BIG)
                return
            if self.handshake_done:
                await self._handle_message(record)
            else:
                await self._handshake(record)

    async def _handshake(self, record: str) -> None:
        try:
            protocol.parse_handshake(record)
        except protocol.HandshakeRefused as refused:
            await self.close_with(handshake_refused(str(refused)))
            return
        assert self.timer is not None  # the handshake timer, started on connect
        self.timer.cancel()
        self.handshake_done = True
        await self.send_message(protocol.HANDSHAKE_ACCEPTED)
        self.timer = asyncio.create_task(self._keep_alive())
        self.start_session()

    async def _handle_message(self, record: str) -> None:
        try:
            message = protocol.parse_message(record)
            if message["type"] == MessageType.INVOCATION:
                await self._invoke(protocol.parse_invocation(message))
            elif message["type"] == MessageType.STREAM_INVOCATION:
                await self._refuse(protocol.parse_invocation(message), "Streaming hub methods are not supported.")
            elif message["type"] == MessageType.CLOSE:  # the client is leaving (JS `stop()`)
                self.closing = True
                await self.close(code=NORMAL_CLOSURE)
            # Ping only proves the client is alive (noted on receipt). Completions (client results), stream items
            # and cancellations belong to features this hub never starts; Ack/Sequence to stateful reconnect.
        except protocol.ProtocolViolation as violation:
            await self.close_with(protocol_violation(str(violation)))

    async def _invoke(self, invocation: protocol.Invocation) -> None:
        method = HUB_METHODS.get(invocation.target.lower())
        if method is ACKNOWLEDGE and not invocation.stream_ids and not method.arity_error(len(invocation.arguments)):
            # Acks do not wait in line (not even for the replay): completed once written (HubConsumer.acknowledge).
            self.acknowledge(invocation.arguments[0], invocation.invocation_id)
            return
        if not await self.commands_may_run():
            return
        if method is None:
            await self._refuse(invocation, f"Unknown hub method '{invocation.target[:128]}'")
            return
        if invocation.stream_ids:
            await self._refuse(invocation, f"{method.name} does not take streams.")
            return
        if error := method.arity_error(len(invocation.arguments)):
            await self._refuse(invocation, error)
            return
        await self.perform(method.command(self.session, *invocation.arguments), request=invocation.invocation_id)

    async def receive_acks_only(self, text_data: str | None, bytes_data: bytes | None) -> None:
        """Runs for a frame that arrived after the server decided to close: AcknowledgeNotification still counts."""
        if text_data is None:
            assert bytes_data is not None  # a frame is text or binary
            try:
                text_data = bytes_data.decode()
            except UnicodeDecodeError:
                return
        try:
            records = self.records.feed(text_data) if self.handshake_done else []
            for record in records:
                message = protocol.parse_message(record)
                if message["type"] != MessageType.INVOCATION:
                    continue
                invocation = protocol.parse_invocation(message)
                if invocation.target.lower() == ACKNOWLEDGE.name.lower() and len(invocation.arguments) == 1:
                    self.acknowledge(invocation.arguments[0], invocation.invocation_id)
        except (protocol.RecordTooLarge, protocol.ProtocolViolation):
            return

    async def confirm_ack(self, notification_id: object, request: str | None) -> None:
        """The invocation's completion says the ack is written (none for a call without an invocationId)."""
        await self.send_reply(None, request)

    async def _refuse(self, invocation: protocol.Invocation, text: str) -> None:
        await self.send_error(HubError(HubError.INVALID, text), invocation.invocation_id)

    # Outbound --------------------------------------------------------------------------------------------------

    async def send_message(self, message: dict) -> None:
        await self.send_text_frame(protocol.encode(message))

    async def send_text_frame(self, text: str) -> None:
        self.last_sent = time.monotonic()
        await super().send_text_frame(text)

    @staticmethod
    def render_live_notification(payload: NotificationPayload) -> str:
        invocation = protocol.render_message(NotificationMessage(notification=payload, replayed=False))
        assert invocation is not None  # a notification always has a SignalR invocation
        return protocol.encode(invocation)

    async def send_client_message(self, message: ClientMessage) -> None:
        if (invocation := protocol.render_message(message)) is not None:
            await self.send_message(invocation)

    async def send_reply(self, reply: ClientMessage | None, request: str | None) -> None:
        if request is not None:
            await self.send_message(protocol.completion(request, result=protocol.render_result(reply)))

    async def send_error(self, error: HubError, request: str | None = None) -> None:
        if request is None:  # the caller asked for no answer, not even an error
            logger.info("signalr connection %s: call without invocationId refused: %s", self.connection_id, error)
            return
        await self.send_message(protocol.completion(request, error=error.message))

    async def send_close_notice(self, reason: CloseReason) -> None:
        if not self.handshake_done:
            await self.send_message(protocol.handshake_refusal(close_error_text(reason)))
        elif self._may_reconnect(reason):
            # No error: with one, pysignalr raises instead of reconnecting.
            await self.send_message(protocol.close(allow_reconnect=True))
        else:
            await self.send_message(protocol.close(error=close_error_text(reason)))

    def _may_reconnect(self, reason: CloseReason) -> bool:
        """Whether connecting again will work: the server is going away, the client went quiet or fell
        behind, or the token this connection was accepted with has expired since (one refused at connect
        would be refused again)."""
        if reason == TOKEN_EXPIRED:
            return self.session.is_open
        return reason in (SERVER_SHUTDOWN, CLIENT_TIMEOUT, TOO_SLOW)

    def close_code(self, reason: CloseReason) -> int:
        # The Close message said "reconnect"; 1000 is the only code the JS client treats as clean.
        return NORMAL_CLOSURE if reason == SERVER_SHUTDOWN else reason.code

    # Timers ----------------------------------------------------------------------------------------------------

    async def _cancel_handshake_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.close_with(HANDSHAKE_CANCELED)

    async def _keep_alive(self) -> None:
        """Ping when the server has been quiet for a keep-alive interval; drop clients silent for too long."""
        interval, timeout = settings.SIGNALR_KEEPALIVE_INTERVAL, settings.SIGNALR_CLIENT_TIMEOUT
        while not self.closing:
            now = time.monotonic()
            if now - self.last_received >= timeout:
                await self.close_with(CLIENT_TIMEOUT)
                return
            if now - self.last_sent >= interval:
                await self.send_message(protocol.PING)
                continue
            await asyncio.sleep(min(self.last_sent + interval, self.last_received + timeout) - now)
