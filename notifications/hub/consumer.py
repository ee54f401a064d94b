"""The Channels side of every hub endpoint: connection lifecycle, guards and layer handlers.

`HubConsumer` owns one `HubSession` and does, for any wire protocol, what
does not depend on the wire: accept the socket, enforce the 64 KiB frame
limit (close 1009) and the flood limit (close 1008), turn layer messages
into the session's client messages, and end the session on disconnect.

A protocol subclasses it, names itself in `protocol_name` (/metrics counts open connections by it) and
implements five methods:

- `receive_frame(text_data, bytes_data)`: parse one inbound frame and call
  the session (usually through `perform`, which sends the reply and maps
  `HubError` and unexpected failures to `send_error`);
- `send_client_message(message)`: render a `ClientMessage` (client_messages.py);
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
the native protocol, after the handshake message for SignalR. The session
opens and replays in a task of its own, so the connection goes on reading
frames meanwhile: acknowledgements of replayed notifications are written while
the replay is still going out. A protocol whose every request needs an answer
(SignalR completions) also overrides `send_reply(reply, request)`, which by
default sends the reply, if any.

Acknowledgements do not wait in line: a protocol hands each one to
`acknowledge(notification_id, request)`, which passes it to the process's ack
batcher and returns at once; `confirm_ack(notification_id, request)` (the
protocol's) tells the client once it is written, `send_error` if it was
refused. Any other command first waits for the acks before it (`perform`), so
its answer still means every earlier frame has been handled. Acks that arrive
after the server decided to close (`receive_acks_only`) are still written.

When the server shuts down (SIGTERM, `notifyhub/shutdown.py`), it calls
`hub_connections_shut_down()` once it has stopped accepting connections: the
sessions of every open connection of the event loop close together (presence
and groups in a few Redis round trips, `session.sessions_close`), then every
connection runs `shut_down()`, which writes the acks it has received and tells
the client to reconnect (`SERVER_SHUTDOWN`), within `SHUTDOWN_GRACE_SECONDS`.
A connection cancelled by its server runs `shut_down()` alone, closing its session.
"""

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

import redis
from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from uvicorn.protocols.utils import ClientDisconnected

from core.database import TRANSIENT_DATABASE_ERRORS
from notifications import layer_messages, metrics, presence
from notifications.hub.auth import AuthRefused, token_from_scope
from notifications.hub.client_messages import ClientMessage, ReplayComplete
from notifications.hub.closes import (
    FLOODING,
    MAX_MESSAGE_BYTES,
    MESSAGE_TOO_BIG,
    SERVER_ERROR,
    SERVER_SHUTDOWN,
    TOO_SLOW,
    TRY_AGAIN_LATER,
    USER_INACTIVE,
    CloseReason,
)
from notifications.hub.eager import start_eagerly
from notifications.hub.errors import HubError
from notifications.hub.per_loop import one_per_event_loop
from notifications.hub.session import HubSession, sessions_close
from notifications.layer_messages import NotificationPayload

logger = logging.getLogger(__name__)

# How long a connection may take to say goodbye and leave its groups when the server shuts down.
SHUTDOWN_GRACE_SECONDS = 5
# Layer messages a connection may have waiting for its socket; past that its client is too slow (close 1013).
OUTBOX_LIMIT = 500
# Rendered live notification frames kept per protocol (see HubConsumer._live_frame).
LIVE_FRAMES_KEPT = 256
# Sessions starting at once per process (see HubConsumer._open_and_replay).
SESSION_STARTS_AT_ONCE = 32


# open_connections(): the running event loop's open hub connections, for the goodbye at shutdown.
open_connections: Callable[[], set["HubConsumer"]] = one_per_event_loop(set)
# session_starts(): the running event loop's turns to start a session (SESSION_STARTS_AT_ONCE of them).
session_starts: Callable[[], asyncio.Semaphore] = one_per_event_loop(lambda: asyncio.Semaphore(SESSION_STARTS_AT_ONCE))


async def hub_connections_shut_down() -> None:
    """At server shutdown, once no new connection can arrive: every open connection says goodbye, all at once.

    Returns within `SHUTDOWN_GRACE_SECONDS` (each `shut_down()` is bounded) and never raises.
    """
    connections = list(open_connections())
    if connections:
        logger.info("shutdown: telling %d hub connection(s) to reconnect", len(connections))
        # First their sessions, all together (a few round trips for thousands) while the loop is not yet busy
        # with the goodbyes: each connection's own `session.close()` then finds its session closed already.
        await _sessions_close([connection.session for connection in connections if hasattr(connection, "session")])
        await asyncio.gather(*(connection.shut_down() for connection in connections))


async def _sessions_close(sessions: list[HubSession]) -> None:
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
            await sessions_close(sessions)
    except TimeoutError:
        logger.warning("shutdown: %d hub session(s) not cleaned up within %g s", len(sessions), SHUTDOWN_GRACE_SECONDS)


def frame_size(text_data: str | None, bytes_data: bytes | None) -> int:
    if text_data is None:
        return len(bytes_data or b"")
    # A str has at most 4 UTF-8 bytes per character: encode only when it could be over the limit.
    if len(text_data) * 4 <= MAX_MESSAGE_BYTES:
        return len(text_data)
    return len(text_data.encode())


# uvicorn's words for a frame sent after the close handshake began (tests/notifyhub/test_uvicorn_patch.py checks them).
UVICORN_SEND_AFTER_CLOSE = "after sending 'websocket.close'"
CLOSE_INTERNAL_ERROR = 1011


class HubConsumer(AsyncWebsocketConsumer):
    """Base of the hub's WebSocket consumers; see the module docstring for what a protocol adds."""

    protocol_name: str  # "native", "signalr": the protocol's label in /metrics
    session: HubSession
    closing = False
    _live_frames: OrderedDict  # per protocol, see __init_subclass__
    _outbox: deque[dict] | None = None  # layer messages waiting for the socket (see `deliver`); made when needed
    _live = False  # set once the replay went out: layer messages are written as they come
    _writing = False  # a write of the outbox is under way (on the router's stack, or in `_writer` if it waited)
    _writer: asyncio.Task | None = None
    _closer: asyncio.Task | None = None
    _starter: asyncio.Task | None = None
    # Done once `session.open()` succeeded (or failed): acks may be written. Futures, not asyncio.Events: an Event
    # makes its waiters' deque up front (~0.8 KiB), on each of thousands of idle connections.
    _session_open: asyncio.Future[None]
    _replayed: asyncio.Future[None]  # done once the replay went out (or the start failed): other commands may run
    _acks_in_flight: set[asyncio.Task]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._live_frames = OrderedDict()

    # Lifecycle -------------------------------------------------------------------------------------------------

    async def dispatch(self, message: dict) -> None:
        """Run the handler of one ASGI or layer message.

        Channels' own `dispatch` first calls `aclose_old_connections()`, a hop
        to the process's single thread-sensitive thread, for every message:
        every inbound frame and every delivery of every connection queued
        behind each other there (most of a fan-out's time). The hub
        never touches the ORM on the event loop: its database work runs in
        `session.in_database_thread`, which closes its own connection.
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
        self._server_send = send
        self.base_send = self._send_unless_client_gone
        self.connection_id = presence.new_connection_id(self.protocol_name)
        loop = asyncio.get_running_loop()
        self._session_open = loop.create_future()
        self._replayed = loop.create_future()
        self._acks_in_flight = set()
        connections = open_connections()
        connections.add(self)
        try:
            with metrics.hub_connection_open(self.protocol_name):
                while True:
                    await self.dispatch(await receive())
        except StopConsumer:
            pass
        except Exception:
            # Whatever ended the connection, it must not stay in presence and its groups (disconnect never ran).
            logger.exception("hub connection %s ended by an error", self.connection_id)
            if hasattr(self, "session"):
                await self.disconnect(CLOSE_INTERNAL_ERROR)
            raise
        except asyncio.CancelledError:
            # The server gave up on the connection (a shutdown past its grace): no disconnect handler runs, so write
            # its acks, say goodbye and clean up here, unless hub_connections_shut_down() did already.
            await self.shut_down()
            raise
        finally:
            connections.discard(self)
            for task in (self._writer, self._starter):
                if task is not None:
                    task.cancel()

    async def connect(self) -> None:
        """Runs on the handshake: always accept, so a refusal can carry a 4401 close code."""
        self.session = HubSession(
            connection_id=self.connection_id, close_connection=self.close_with, deliver=self.deliver
        )
        await self.accept(self.select_subprotocol())

    def select_subprotocol(self) -> str | None:
        """The WebSocket subprotocol to accept (none by default)."""
        return None

    def start_session(self) -> None:
        """Authenticate, say hello, replay what the user missed (on refusal close with 4401), in a task of its own:
        the connection reads frames (acks of the replay) meanwhile."""
        self._starter = asyncio.create_task(self._open_and_replay(), name=f"{self.connection_id}-start")

    async def _open_and_replay(self) -> None:
        try:
            try:
                # After a restart every client reconnects within seconds: starts wait for a turn, in order of
                # arrival, so that the loop, the Redis and database pools and the hub's other work (deliveries,
                # publishes) see a few dozen starts in progress at a time rather than thousands.
                async with session_starts():
                    hello = await self.session.open(token_from_scope(self.scope))
            except AuthRefused as refused:
                await self.close_with(CloseReason.unauthorized(refused.reason))
                return
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, *TRANSIENT_DATABASE_ERRORS) as error:
                logger.warning("hub connection %s could not start now: %s", self.connection_id, error)
                await self.session.close()
                await self.close_with(TRY_AGAIN_LATER)
                return
            except Exception:
                logger.exception("hub connection %s could not start", self.connection_id)
                await self.session.close()
                await self.close_with(SERVER_ERROR)
                return
            _settle(self._session_open)
            await self.send_client_message(hello)
            count = 0
            async for replayed in self.session.replay():
                if self.closing:  # e.g. the token expired during a long replay
                    return
                await self.send_client_message(replayed)
                count += 1
            await self.send_client_message(ReplayComplete(count=count))
            # Live messages queued during the replay go out now, after it: the client sees replay_complete first.
            self._live = True
            self._write_outbox_soon()
        finally:
            # Whatever happened, frames waiting for the start go on (to nothing, if the connection is closing).
            _settle(self._session_open)
            _settle(self._replayed)
            self._starter = None  # this task ends here: an idle connection does not keep it

    async def commands_may_run(self) -> bool:
        """Wait until the replay has gone out and the acks before are answered (commands are answered in order,
        after both); False if the connection is closing."""
        await asyncio.shield(self._replayed)  # shielded: a waiter cancelled must not cancel the future for others
        await self.acks_settled()
        return not self.closing

    async def websocket_disconnect(self, message: dict) -> None:
        """Runs when the socket has closed: `disconnect`, then the consumer ends.

        Channels' own handler also discards the consumer's `groups` (the hub's
        have none: its router joins the groups) and then awaits
        `aclose_old_connections()`, a hop to the process's one thread-sensitive
        thread for every disconnect: half the CPU of a shutdown with 5,000
        connections. The hub's database work closes its own connections
        (`in_database_thread`).
        """
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        """Runs when the socket has closed, from either side."""
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()  # an open still under way must not join groups after close() left them
            await asyncio.wait([self._starter])
        await self.session.close()

    async def shut_down(self) -> None:
        """When the server shuts down: tell the client to reconnect, then end the session (never raises).

        Bounded by `SHUTDOWN_GRACE_SECONDS`. `session.close()` is where the
        connection leaves presence and its groups: the place for anything it
        must still write before the process goes.
        """
        if not hasattr(self, "session"):  # connect() has not run: nothing to say, nothing to undo
            return
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                await self.acks_settled()  # written (and confirmed) before the goodbye
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
            # The server has decided to close, but acks already on their way are still written.
            if frame_size(text_data, bytes_data) <= MAX_MESSAGE_BYTES and self._session_open.done():
                await self.receive_acks_only(text_data, bytes_data)
            return
        if frame_size(text_data, bytes_data) > MAX_MESSAGE_BYTES:
            await self.close_with(MESSAGE_TOO_BIG)
            return
        if not self.session.admit_message():
            logger.info("hub connection %s from %s closed for flooding", self.connection_id, self.client_address())
            await self.close_with(FLOODING)
            return
        await self.receive_frame(text_data, bytes_data)

    def client_address(self) -> str:
        """The client's address: its socket's peer, or who a trusted proxy says it is (notifyhub/proxies.py)."""
        client = self.scope.get("client")
        return str(client[0]) if client else "an unknown address"

    async def perform(self, command: Awaitable[ClientMessage | None], *, request: str | None = None) -> None:
        """Await a session command, after the replay and the acks before it; send its reply, or an error."""
        if not await self.commands_may_run():
            getattr(command, "close", lambda: None)()  # a coroutine never awaited: the connection is going
            return
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

    async def send_reply(self, reply: ClientMessage | None, request: str | None) -> None:
        """Send what a command answered, if anything (a protocol with completions overrides this)."""
        if reply is not None:
            await self.send_client_message(reply)

    # Acknowledgements ------------------------------------------------------------------------------------------

    def acknowledge(self, notification_id: object, request: str | None = None) -> None:
        """Hand one ack to the process's ack batcher and go on reading; its answer follows once it is written."""
        task = asyncio.create_task(self._acknowledge(notification_id, request))
        self._acks_in_flight.add(task)
        task.add_done_callback(self._acks_in_flight.discard)

    async def _acknowledge(self, notification_id: object, request: str | None) -> None:
        await asyncio.shield(self._session_open)
        if self.session.identity is None:  # the start failed: nobody to acknowledge for
            return
        try:
            await self.session.acknowledge(notification_id)
        except HubError as error:
            await self._send_unless_gone(self.send_error(error, request))
            return
        except Exception:
            logger.exception("hub ack failed on %s", self.connection_id)
            internal = HubError(HubError.INTERNAL, "The server could not record that ack now; send it again.")
            await self._send_unless_gone(self.send_error(internal, request))
            return
        await self._send_unless_gone(self.confirm_ack(notification_id, request))

    async def acks_settled(self) -> None:
        """Returns once every ack received so far is written and answered."""
        while self._acks_in_flight:
            await asyncio.wait(set(self._acks_in_flight))

    async def _send_unless_gone(self, sending: Awaitable[None]) -> None:
        # After a close (ours or the client's) there is nobody left to tell; the ack itself is written.
        try:
            await sending
        except Exception:
            if not self.closing:
                raise

    # Layer messages (see notifications.layer), handed over by the process's HubRouter -------------------------

    def deliver(self, message: dict) -> None:
        """Write a layer message to the socket now, or queue it behind those waiting (the router calls this;
        it never waits).

        Nearly always nothing waits ahead of it and the ASGI send completes
        at once, so the frame is written right here, on the router's stack:
        no task and no wake-up per connection (`eager.py`). Messages queue
        while the replay goes out and behind a send that had to wait (uvicorn
        pauses sends while the client's buffers are full); a task writes them
        in order once it can. A client that stops reading stalls only its own
        queue; once `OUTBOX_LIMIT` messages wait, it is closed with 1013 and
        catches up by replay when it reconnects (the deliveries stay
        unacknowledged in the database, so the retry sweep and push fallback
        still apply).
        """
        if self.closing:
            return
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = deque()
        elif len(outbox) >= OUTBOX_LIMIT:
            self._drop_slow_client()
            return
        outbox.append(message)
        self._write_outbox_soon()

    def _write_outbox_soon(self) -> None:
        """Start writing the outbox now, unless a write is under way (it takes what was queued) or the replay is."""
        if self._live and not self._writing:
            self._writing = True
            self._writer = start_eagerly(self._write_outbox())

    async def _write_outbox(self) -> None:
        try:
            while self._outbox:
                message = self._outbox.popleft()
                try:
                    await self.dispatch(message)
                except Exception:
                    logger.exception("hub connection %s: a %s message failed", self.connection_id, message.get("type"))
        finally:
            self._writing = False
            if not self._outbox:
                self._outbox = None  # drained: an idle connection keeps no deque

    def _drop_slow_client(self) -> None:
        logger.warning("hub connection %s closed: %d messages wait for a slow client", self.connection_id, OUTBOX_LIMIT)
        self._outbox = None
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

    async def notification_created(self, message: layer_messages.NotificationCreated) -> None:
        """Runs when a notification is published to one of this connection's groups."""
        if self.session.is_open and (client_message := self.session.notification_message(message)):
            await self.send_text_frame(self._live_frame(client_message.notification))

    def _live_frame(self, payload: NotificationPayload) -> str:
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
        if self.session.is_open and (client_message := self.session.read_message(message)):
            await self.send_client_message(client_message)

    async def notifications_resolved(self, message: dict) -> None:
        """Runs when the work some of the user's notifications were about is done (they were resolved)."""
        if self.session.is_open:
            for client_message in self.session.resolved_messages(message):
                await self.send_client_message(client_message)

    async def room_presence(self, message: dict) -> None:
        """Runs when someone joins or leaves a document room this connection is in."""
        if self.session.is_open and (client_message := self.session.room_message(message)):
            await self.send_client_message(client_message)

    async def user_deactivated(self, message: dict) -> None:
        """Runs when the user was deactivated: the connection ends as an unauthorized one would."""
        await self.close_with(USER_INACTIVE)
        await self.session.close()

    async def room_typing(self, message: dict) -> None:
        """Runs when someone types in a document room this connection is in."""
        if self.session.is_open and (client_message := self.session.room_message(message)):
            await self.send_client_message(client_message)

    # What a protocol implements -----------------------------------------------------------------------------

    async def receive_frame(self, text_data: str | None, bytes_data: bytes | None) -> None:
        raise NotImplementedError

    async def receive_acks_only(self, text_data: str | None, bytes_data: bytes | None) -> None:
        """A frame that arrived after the server decided to close: `acknowledge` the acks in it, ignore the rest."""
        raise NotImplementedError

    async def confirm_ack(self, notification_id: object, request: str | None) -> None:
        """Tell the client its ack of `notification_id` is written."""
        raise NotImplementedError

    async def send_client_message(self, message: ClientMessage) -> None:
        raise NotImplementedError

    async def send_error(self, error: HubError, request: str | None = None) -> None:
        raise NotImplementedError

    async def send_close_notice(self, reason: CloseReason) -> None:
        raise NotImplementedError

    @staticmethod
    def render_live_notification(payload: NotificationPayload) -> str:
        """The text frame of a live (not replayed) notification: the same for every connection."""
        raise NotImplementedError

    async def send_text_frame(self, text: str) -> None:
        """Write one text frame: straight to the server's ASGI send (Channels' `send` only wraps it, two calls
        deeper, for every frame of a fan-out)."""
        await self.base_send({"type": "websocket.send", "text": text})

    async def _send_unless_client_gone(self, message: dict) -> None:
        """The server's ASGI send (`base_send`, for Channels' `send` and `send_text_frame` alike); a message to
        a client that has closed already is dropped.

        Both servers refuse it: daphne with autobahn's `Disconnected`, uvicorn with `ClientDisconnected` once
        the socket is gone or a RuntimeError once it has answered the client's close frame. The reply to a
        command the client sent just before closing meets that; raised, it ended the consumer before its
        `disconnect`, leaving the connection in presence and its groups. The disconnect waits in the server's
        queue and runs next.
        """
        try:
            await self._server_send(message)
        except (ClientDisconnected, Disconnected):
            self.closing = True
        except RuntimeError as error:
            if UVICORN_SEND_AFTER_CLOSE not in str(error):
                raise
            self.closing = True


def _settle(flag: asyncio.Future[None]) -> None:
    """Mark one of a connection's start flags done (once; later calls change nothing)."""
    if not flag.done():
        flag.set_result(None)
