"""The Channels side of every hub endpoint: connection lifecycle, guards and layer handlers.

`HubConsumer` owns one `HubSession` and does, for any wire protocol, what
does not depend on the wire: accept the socket, enforce the 64 KiB frame
limit (close 1009) and the flood limit (close 1008), turn layer messages
into the session's events, and end the session on disconnect.

A protocol subclasses it and implements five methods:

- `receive_frame(text_data, bytes_data)`: parse one inbound frame and call
  the session (usually through `perform`, which sends the reply and maps
  `HubError` and unexpected failures to `send_error`);
- `send_event(event)`: render a `session.HubEvent`;
- `send_error(error, request)`: render a `session.HubError`; `request` is
  whatever `perform` was given to say which inbound message failed (the
  native protocol's `type`, a SignalR invocation id). The connection stays up;
- `send_close_notice(reason)`: what the client gets just before the close
  frame (which carries the code and reason too; the frame is for client
  libraries that hide close reasons);
- `render_live_notification(payload)`: the text frame of a live notification,
  which is the same for every connection (so a fan-out renders it once).

It may also override `close_code(reason)`, the WebSocket close code sent for
a `CloseReason` (by default its own code).

and calls `start_session()` once the client may receive frames: at once for
the native protocol, after the handshake message for SignalR. A protocol whose
every request needs an answer (SignalR completions) also overrides
`send_reply(reply, request)`, which by default sends the reply event, if any.

When the server shuts down (SIGTERM, `notifyhub/shutdown.py`), it calls
`hub_connections_shut_down()` once it has stopped accepting connections: every
open connection of the event loop runs `shut_down()`, which tells the client
to reconnect (`SERVER_SHUTDOWN`) and closes the session, within
`SHUTDOWN_GRACE_SECONDS`. A connection cancelled by its server does the same.
"""

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from notifications.hub.auth import AuthRefused, token_from_scope
from notifications.hub.per_loop import one_per_event_loop
from notifications.hub.session import (
    FLOODING,
    MAX_MESSAGE_BYTES,
    MESSAGE_TOO_BIG,
    SERVER_SHUTDOWN,
    TOO_SLOW,
    CloseReason,
    HubError,
    HubEvent,
    HubSession,
    ReplayComplete,
)

logger = logging.getLogger(__name__)

# How long a connection may take to say goodbye and leave its groups when the server shuts down.
SHUTDOWN_GRACE_SECONDS = 5
# Layer messages a connection may have waiting for its socket; past that its client is too slow (close 1013).
OUTBOX_LIMIT = 500
# Rendered live notification frames kept per protocol (see HubConsumer._live_frame).
LIVE_FRAMES_KEPT = 256


# open_connections(): the running event loop's open hub connections, for the goodbye at shutdown.
open_connections = one_per_event_loop(set)


async def hub_connections_shut_down() -> None:
    """At server shutdown, once no new connection can arrive: every open connection says goodbye, all at once.

    Returns within `SHUTDOWN_GRACE_SECONDS` (each `shut_down()` is bounded) and never raises.
    """
    connections = list(open_connections())
    if connections:
        logger.info("shutdown: telling %d hub connection(s) to reconnect", len(connections))
        await asyncio.gather(*(connection.shut_down() for connection in connections))


def frame_size(text_data: str | None, bytes_data: bytes | None) -> int:
    if text_data is None:
        return len(bytes_data or b"")
    # A str has at most 4 UTF-8 bytes per character: encode only when it could be over the limit.
    if len(text_data) * 4 <= MAX_MESSAGE_BYTES:
        return len(text_data)
    return len(text_data.encode())


class HubConsumer(AsyncWebsocketConsumer):
    """Base of the hub's WebSocket consumers; see the module docstring for what a protocol adds."""

    session: HubSession
    closing = False
    _live_frames: OrderedDict  # per protocol, see __init_subclass__
    _outbox: asyncio.Queue
    _writer: asyncio.Task | None = None
    _closer: asyncio.Task | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._live_frames = OrderedDict()

    # Lifecycle -------------------------------------------------------------------------------------------------

    async def dispatch(self, message: dict) -> None:
        """Run the handler of one ASGI or layer message.

        Channels' own `dispatch` first calls `aclose_old_connections()`, a hop
        to the process's single thread-sensitive thread, for every message:
        every inbound frame and every delivery of every connection queued
        behind each other there (issue 7: most of a fan-out's time). The hub
        never touches the ORM on the event loop: its database work runs in
        `session._in_database_thread`, which closes its own connection.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']!r}")
        await handler(message)

    async def __call__(self, scope, receive, send) -> None:
        """Runs the whole connection; when the server shuts down, tells the client before it goes.

        No channel-layer channel of its own: layer messages reach the
        connection through its process's `HubRouter` (see `router.py`), which
        calls `dispatch` directly. So the loop is a plain read of the socket,
        not Channels' `await_many_dispatch` over two sources.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.connection_id = f"hub.{uuid.uuid4().hex}"
        self._outbox = asyncio.Queue()
        connections = open_connections()
        connections.add(self)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            # The server gave up on the connection (a shutdown past its grace): no disconnect handler runs, so say
            # goodbye and clean up here, unless hub_connections_shut_down() did already.
            await self.shut_down()
            raise
        finally:
            connections.discard(self)
            if self._writer is not None:
                self._writer.cancel()

    async def connect(self) -> None:
        """Runs on the handshake: always accept, so a refusal can carry a 4401 close code."""
        self.session = HubSession(
            connection_id=self.connection_id, close_connection=self.close_with, deliver=self.deliver
        )
        await self.accept(self.select_subprotocol())

    def select_subprotocol(self) -> str | None:
        """The WebSocket subprotocol to accept (none by default)."""
        return None

    async def start_session(self) -> None:
        """Authenticate, say hello, replay what the user missed; on refusal close with 4401."""
        try:
            hello = await self.session.open(token_from_scope(self.scope))
        except AuthRefused as refused:
            await self.close_with(CloseReason.unauthorized(refused.reason))
            return
        except BaseException:
            await self.session.close()  # no disconnect handler runs after the consumer crashes
            raise
        await self.send_event(hello)
        count = 0
        async for event in self.session.replay():
            if self.closing:  # e.g. the token expired during a long replay
                return
            await self.send_event(event)
            count += 1
        await self.send_event(ReplayComplete(count=count))
        # Live messages queued during the replay go out now, after it: the client sees replay_complete first.
        self._writer = asyncio.create_task(self._write_outbox())

    async def disconnect(self, code: int) -> None:
        """Runs when the socket has closed, from either side."""
        await self.session.close()

    async def shut_down(self) -> None:
        """When the server shuts down: tell the client to reconnect, then end the session (never raises).

        Bounded by `SHUTDOWN_GRACE_SECONDS`. `session.close()` is where the
        connection leaves presence and its groups: the place for anything it
        must still write before the process goes (its queued acks).
        """
        if not hasattr(self, "session"):  # connect() has not run: nothing to say, nothing to undo
            return
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                await self.close_with(SERVER_SHUTDOWN)
                await self.session.close()
        except Exception:
            logger.warning("hub connection %s not cleaned up at shutdown", self.connection_id, exc_info=True)

    async def close_with(self, reason: CloseReason) -> None:
        """End the connection, telling the client why (once)."""
        if self.closing:
            return
        self.closing = True
        await self.send_close_notice(reason)
        await self.close(code=self.close_code(reason), reason=reason.reason)

    def close_code(self, reason: CloseReason) -> int:
        """The WebSocket close code that ends a connection for `reason`."""
        return reason.code

    # Inbound ---------------------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Runs for every inbound frame: size and flood guards, then the protocol's parser."""
        if self.closing:
            return
        if frame_size(text_data, bytes_data) > MAX_MESSAGE_BYTES:
            await self.close_with(MESSAGE_TOO_BIG)
            return
        if not self.session.admit_message():
            logger.info("hub connection %s closed for flooding", self.connection_id)
            await self.close_with(FLOODING)
            return
        await self.receive_frame(text_data, bytes_data)

    async def perform(self, command: Awaitable[HubEvent | None], *, request: str | None = None) -> None:
        """Await a session command; send its reply, or an error if it was refused or failed."""
        try:
            reply = await command
        except HubError as error:
            await self.send_error(error, request)
            return
        except Exception:
            logger.exception("hub command failed on %s", self.connection_id)
            await self.send_error(HubError(HubError.INTERNAL, "The server could not do that now; try again."), request)
            return
        await self.send_reply(reply, request)

    async def send_reply(self, reply: HubEvent | None, request: str | None) -> None:
        """Send what a command answered: the event itself, if any (a protocol with completions overrides this)."""
        if reply is not None:
            await self.send_event(reply)

    # Layer messages (see notifications.events), handed over by the process's HubRouter -------------------------

    def deliver(self, message: dict) -> None:
        """Queue a layer message for this connection's writer (the router calls this; it never waits).

        A client that stops reading stalls only its own writer; once
        `OUTBOX_LIMIT` messages wait, it is closed with 1013 and catches up
        by replay when it reconnects (the deliveries stay unacknowledged in
        the database, so the retry sweep and push fallback still apply).
        """
        if self.closing:
            return
        if self._outbox.qsize() >= OUTBOX_LIMIT:
            self._drop_slow_client()
            return
        self._outbox.put_nowait(message)

    async def _write_outbox(self) -> None:
        while True:
            message = await self._outbox.get()
            try:
                await self.dispatch(message)
            except Exception:
                logger.exception("hub connection %s: a %s message failed", self.connection_id, message.get("type"))

    def _drop_slow_client(self) -> None:
        logger.warning("hub connection %s closed: %d messages wait for a slow client", self.connection_id, OUTBOX_LIMIT)
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._closer = asyncio.create_task(self._close_slow_client())

    async def _close_slow_client(self) -> None:
        # The close frame may wait behind the frames the client is not reading: leave presence and groups
        # regardless, so from now on its notifications take the retry and push path.
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                await self.close_with(TOO_SLOW)
        except TimeoutError:
            pass
        await self.session.close()

    async def notification_created(self, message: dict) -> None:
        """Runs when a notification is published to one of this connection's groups."""
        if self.session.is_open and (event := self.session.notification_event(message)):
            await self.send_text_frame(self._live_frame(event.notification))

    def _live_frame(self, payload: dict) -> str:
        # A department send hands the same payload to every member's connection in this process: render it
        # once per protocol (a notification's payload never changes, so its id is the key).
        frames = type(self)._live_frames
        frame = frames.get(payload["id"])
        if frame is None:
            frame = frames[payload["id"]] = self.render_live_notification(payload)
            if len(frames) > LIVE_FRAMES_KEPT:
                frames.popitem(last=False)
        return frame

    async def notifications_read(self, message: dict) -> None:
        """Runs when the user read notifications (possibly on another connection)."""
        if self.session.is_open and (event := self.session.read_event(message)):
            await self.send_event(event)

    async def room_presence(self, message: dict) -> None:
        """Runs when someone joins or leaves a document room this connection is in."""
        if self.session.is_open and (event := self.session.room_event(message)):
            await self.send_event(event)

    async def room_typing(self, message: dict) -> None:
        """Runs when someone types in a document room this connection is in."""
        if self.session.is_open and (event := self.session.room_event(message)):
            await self.send_event(event)

    # What a protocol implements -----------------------------------------------------------------------------

    async def receive_frame(self, text_data: str | None, bytes_data: bytes | None) -> None:
        raise NotImplementedError

    async def send_event(self, event: HubEvent) -> None:
        raise NotImplementedError

    async def send_error(self, error: HubError, request: str | None = None) -> None:
        raise NotImplementedError

    async def send_close_notice(self, reason: CloseReason) -> None:
        raise NotImplementedError

    @staticmethod
    def render_live_notification(payload: dict) -> str:
        """The text frame of a live (not replayed) notification: the same for every connection."""
        raise NotImplementedError

    async def send_text_frame(self, text: str) -> None:
        await self.send(text_data=text)
