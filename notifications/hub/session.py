"""The protocol-neutral core of one hub connection.

A `HubSession` is what a connected client *is*, whatever wire protocol it
speaks: who it is (the authenticated identity and when its token expires),
where it is (presence, its user and department groups, the document rooms it
joined), what it has already been shown (de-duplication by notification id),
and what it may ask (ack, read, read all, ping, subscribe, unsubscribe,
typing). It talks to services, selectors, `notifications.presence` and
`notifications.events`; it never builds a frame and never touches a socket.

The seam: a protocol (the native JSON protocol in `native.py`, SignalR in
issue 6) is a `HubConsumer` subclass (`consumer.py`) that parses its frames
into calls on this class and renders the `HubEvent`s and `HubError`s it gets
back. Every rule lives here once:

- `open(raw_token)` authenticates, joins the groups, registers presence,
  hands the session to the process's presence heartbeat (`heartbeat.py`),
  starts the token-expiry timer, and returns `Hello`;
  `replay()` then yields what the user has not acknowledged, oldest first.
- Commands (`acknowledge`, `mark_read`, ...) return the event to send back,
  if any, or raise `HubError(code, message)`; the connection stays up.
- Layer messages become events through `notification_event`, `read_event`
  and `room_event`, which return None for what this client must not see
  (a notification meant for other department members, one it already has,
  its own read or typing).
- `admit_message()` is the flood guard for every inbound frame.
- When the session must end the connection (token expiry) it awaits the
  `close_connection(CloseReason)` callback the consumer gave it.
- `close()` undoes everything on disconnect.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from core.database import TRANSIENT_DATABASE_ERRORS
from notifications import events, presence, selectors, services
from notifications.errors import NotificationError
from notifications.hub import load
from notifications.hub.auth import HubIdentity, identity_for_token, user_id_of, validate_access_token
from notifications.hub.heartbeat import presence_refresher
from notifications.hub.per_loop import one_per_event_loop
from notifications.hub.router import hub_router
from notifications.services import ReplayPage
from workflow.selectors import department_ids_of, document_is_visible_to

logger = logging.getLogger(__name__)

# Frames larger than this end the connection with 1009 (daphne's own limit is 1 MiB).
MAX_MESSAGE_BYTES = 64 * 1024
REPLAY_PAGE_SIZE = 200
# Notification ids remembered per connection to drop duplicates (replay vs live, user vs department group).
SEEN_IDS_KEPT = 2_000
MAX_ROOMS = 50
# Acknowledgements a client may still owe beyond the rate limit (one per notification sent; see MessageRateLimit).
MAX_GRANTED_MESSAGES = 2_000
TYPING_MIN_INTERVAL = 1.0
# Most acks one database write persists (see AckBatcher).
ACK_BATCH_SIZE = 500


# --- Errors and closes ---------------------------------------------------------------------------------------


class HubError(Exception):
    """A client request the hub refuses; the connection stays open and nothing was changed."""

    INVALID = "invalid"  # a field is missing or malformed
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    NOT_SUBSCRIBED = "not_subscribed"
    RATE_LIMITED = "rate_limited"
    LIMIT_EXCEEDED = "limit_exceeded"
    INTERNAL = "internal_error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CloseReason:
    """Why the server ends a connection: a WebSocket close code and a short reason for the client."""

    code: int
    reason: str
    error_code: str  # the code of the error frame sent just before closing (some clients never see reasons)

    @classmethod
    def unauthorized(cls, reason: str) -> "CloseReason":
        return cls(4401, reason, "unauthorized")


TOKEN_EXPIRED = CloseReason.unauthorized("token expired")
# The same words as a refusal at connect (auth.identity_for_token): the user was deactivated while connected.
USER_INACTIVE = CloseReason.unauthorized("user unknown or inactive")
MESSAGE_TOO_BIG = CloseReason(1009, f"message larger than {MAX_MESSAGE_BYTES} bytes", "message_too_big")
FLOODING = CloseReason(1008, "too many messages", "rate_limited")
# The connection fell behind by OUTBOX_LIMIT messages (the client reads too slowly): it reconnects and replays.
TOO_SLOW = CloseReason(1013, "too slow to keep up", "too_slow")
# The server process is stopping (a deploy or restart, see notifyhub/shutdown.py): 1012 "service restart" tells
# clients to reconnect, and another process (or this one, restarted) answers and replays what they missed.
SERVER_SHUTDOWN = CloseReason(1012, "server restarting", "server_shutdown")
# Redis or the database failed the session's start (a restart under way): reconnect with backoff, it will work.
TRY_AGAIN_LATER = CloseReason(1013, "try again later", "unavailable")
# Anything else failed it (a bug, logged): reconnect with backoff.
SERVER_ERROR = CloseReason(1011, "server error; reconnect", "internal_error")


# --- Events: what the hub tells a client, before any protocol renders it ----------------------------------------


@dataclass(frozen=True)
class UserRef:
    id: int
    username: str

    def as_dict(self) -> dict:
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
class NotificationEvent:
    notification: dict  # `events.notification_payload`
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


HubEvent = (
    Hello
    | NotificationEvent
    | ReplayComplete
    | NotificationsRead
    | Pong
    | RoomJoined
    | RoomLeft
    | RoomPresence
    | RoomTyping
)


# --- The session ------------------------------------------------------------------------------------------------


class MessageRateLimit:
    """Token bucket: `burst` messages at once, refilled at `rate` per second, plus the `granted` answers.

    A client acknowledges every notification it is sent, so each one sent
    grants one message: acknowledging a replay of hundreds at once (as clients
    that ack in their event handler do) is not flooding.
    """

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.granted = 0
        self.updated = time.monotonic()

    def grant(self) -> None:
        """Allow one more message, beyond the rate: the answer to a notification just sent."""
        self.granted = min(self.granted + 1, MAX_GRANTED_MESSAGES)

    def admit(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        if self.granted:
            self.granted -= 1
            return True
        return False


@dataclass(frozen=True)
class _ConnectionStart:
    identity: HubIdentity
    department_ids: list[int]
    unread_count: int
    first_replay_page: ReplayPage


def _load_connection(token: AccessToken) -> _ConnectionStart:
    """Everything a connection needs from the database at connect, in one trip (sync)."""
    identity = identity_for_token(token)
    user_id = identity.user.pk
    summary = selectors.inbox_summary(user_id)
    if summary.unacknowledged:
        first_replay_page = services.deliveries_replay_page(user_id=user_id, limit=REPLAY_PAGE_SIZE)
    else:  # nothing to replay (most connects): no replay query. A later commit arrives live (presence is up).
        first_replay_page = ReplayPage(notifications=[], cursor=None)
    return _ConnectionStart(
        identity=identity,
        department_ids=department_ids_of(user_id),
        unread_count=summary.unread,
        first_replay_page=first_replay_page,
    )


def _in_database_thread(function, *, executor: ThreadPoolExecutor | None = None):
    """`function` run in a worker thread with its own short-lived database connection, retried once if the
    database failed it transiently (a lost connection: PostgreSQL restarted, a backend was terminated).

    Every hub call is idempotent (reads, acks, reads marked, replay pages), so running it again is safe.
    Not thread-sensitive: hub connections are independent, and serialising
    every connect, ack and read of a process through one thread made 1,000
    concurrent connects queue behind each other's database connection setup.
    The connection is closed inside the call: Channels' own cleanup around a
    non-thread-sensitive call was seen to leave it open (asgiref 3.13 runs the
    call in a copied context whose connection the cleanup does not see).
    `executor`: the threads to run it in (default: the event loop's).
    """

    def run_then_close_connection(*args, **kwargs):
        try:
            try:
                return function(*args, **kwargs)
            except TRANSIENT_DATABASE_ERRORS as error:
                logger.warning("hub: %s failed on the database (%s); once more", function.__name__, error)
                connection.close()  # back to the pool, which drops it if it is broken
                return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run_then_close_connection, thread_sensitive=False, executor=executor)


class AckBatcher:
    """Coalesces the acks of every connection on one event loop into few database writes (issue 7).

    Group commit: at most one write is in flight per loop. An ack that finds
    none starts one at once (no added latency when idle); acks that arrive
    while a write runs wait for the next one, which takes up to
    `ACK_BATCH_SIZE` of them in one `services.deliveries_acknowledge_many`
    call. Batches so grow with the load instead of after a fixed delay. Each
    waiting ack gets its own outcome; if a write fails, every ack in it fails
    with that error (the consumer answers `internal_error`), never hangs.
    """

    def __init__(self) -> None:
        # (user id, notification id, its outcome, when it arrived: time.monotonic()), oldest first
        self._waiting: list[tuple[int, object, asyncio.Future, float]] = []
        self._writer: asyncio.Task | None = None
        self._writing_since: float | None = None  # when the oldest ack of the write in flight arrived
        load.watch_ack_backlog(self)
        # A thread of its own: acks never queue behind connects and replays for a worker thread (issue 12).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-acks")

    def oldest_wait_seconds(self) -> float:
        """How long the oldest ack not yet written has waited (0 when none waits): see `load`."""
        oldest = self._writing_since or (self._waiting[0][3] if self._waiting else None)
        return 0.0 if oldest is None else time.monotonic() - oldest

    async def acknowledge(self, user_id: int, notification_id: object) -> services.AckOutcome:
        outcome = asyncio.get_running_loop().create_future()
        self._waiting.append((user_id, notification_id, outcome, time.monotonic()))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_while_waiting())
        return await outcome

    async def _write_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:ACK_BATCH_SIZE]
                del self._waiting[:ACK_BATCH_SIZE]
                self._writing_since = batch[0][3]
                await self._write(batch)
                self._writing_since = None
        finally:
            self._writing_since = None
            self._writer = None
            for _, _, outcome, _ in self._waiting:  # only when cancelled (server shutdown): nobody waits forever
                outcome.cancel()
            self._waiting.clear()

    async def _write(self, batch: list[tuple[int, object, asyncio.Future]]) -> None:
        try:
            outcomes = await _in_database_thread(services.deliveries_acknowledge_many, executor=self._thread)(
                [(user_id, notification_id) for user_id, notification_id, *_ in batch]
            )
        except BaseException as error:
            for _, _, outcome, _ in batch:
                if not outcome.done():
                    outcome.set_exception(error)
            if not isinstance(error, Exception):  # cancelled: stop writing
                raise
            return
        for (_, _, outcome, _), result in zip(batch, outcomes, strict=True):
            if not outcome.done():  # its connection may have gone meanwhile
                outcome.set_result(result)


# One batcher per event loop (the tests run several loops in one process; a server runs one).
_ack_batcher = one_per_event_loop(AckBatcher)


def _parse_document_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise HubError(HubError.INVALID, "document_id must be a positive integer.")
    return value


class HubSession:
    """One authenticated hub connection, independent of its wire protocol (see the module docstring)."""

    def __init__(
        self,
        *,
        connection_id: str,
        close_connection: Callable[[CloseReason], Awaitable[None]],
        deliver: Callable[[dict], None],
    ) -> None:
        # Unique across processes: the presence member, and how read syncs skip their origin.
        self.connection_id = connection_id
        self.close_connection = close_connection
        # How the process's HubRouter hands this connection a layer message (queues it; never waits).
        self.deliver = deliver
        self.identity: HubIdentity | None = None
        self.user_id: int | None = None  # known from the token before the database confirms the user
        self.department_ids: list[int] = []
        self.rooms: set[int] = set()
        self._seen_ids: OrderedDict[str, None] = OrderedDict()
        self._typing_at: dict[int, float] = {}
        self._tasks: list[asyncio.Task] = []
        self._rate = MessageRateLimit(rate=settings.WS_RATE_LIMIT, burst=settings.WS_RATE_BURST)
        self._replay_start: ReplayPage | None = None
        self._closed = False

    # Lifecycle -----------------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.identity is not None and not self._closed

    @property
    def user(self) -> UserRef:
        user = self.identity.user
        return UserRef(id=user.pk, username=user.get_username())

    async def open(self, raw_token: str | None) -> Hello:
        """Authenticate and go live: groups, presence and its heartbeat, expiry timer. Raises `AuthRefused`.

        Every notification committed while this runs arrives live or in the
        replay (or both: de-duplicated), because each route is joined before
        presence advertises it, and the replay is read after that:
        user group → presence → [database: user, departments, unread count,
        first replay page] → department groups → department presence.
        """
        token = validate_access_token(raw_token)
        self.user_id = user_id_of(token)
        await self._join([events.user_group(self.user_id)])
        await presence.connection_alive(self.user_id, self.connection_id)
        start = await _in_database_thread(_load_connection)(token)  # AuthRefused: close() cleans up
        self.identity = start.identity
        self.department_ids = start.department_ids
        self._replay_start = start.first_replay_page
        await self._join(self._groups())
        await self._refresh_presence()
        presence_refresher().register(self)
        seconds_left = (start.identity.token_expires_at - timezone.now()).total_seconds()
        self._tasks = [asyncio.create_task(self._close_at_token_expiry(seconds_left))]
        return Hello(
            user=self.user,
            department_ids=start.department_ids,
            unread_count=start.unread_count,
            server_time=timezone.now(),
            token_expires_at=start.identity.token_expires_at,
            heartbeat_seconds=settings.NOTIFY_PRESENCE_HEARTBEAT,
        )

    async def replay(self) -> AsyncIterator[NotificationEvent]:
        """Yield the notifications this user has not acknowledged, oldest first (after `open`)."""
        page = self._replay_start
        self._replay_start = None
        while True:
            for payload in page.notifications:
                if self._first_sight(payload["id"]):
                    self._rate.grant()
                    yield NotificationEvent(notification=payload, replayed=True)
            if page.cursor is None:
                return
            page = await _in_database_thread(services.deliveries_replay_page)(
                user_id=self.user_id, after=page.cursor, limit=REPLAY_PAGE_SIZE
            )

    async def close(self) -> None:
        """Leave rooms, groups and presence (on disconnect; safe to call twice, or after a failed `open`)."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        if self.user_id is None:
            return
        try:
            await presence_refresher().unregister(self)  # before connection_gone, or a tick could undo it
            for document_id in list(self.rooms):
                await self._leave_room(document_id)
            await presence.connection_gone(self.user_id, self.connection_id, department_ids=self.department_ids)
        except Exception:  # Redis gone: presence ages out on its own
            logger.warning("hub connection %s left without cleanup", self.connection_id, exc_info=True)
        finally:
            await hub_router().leave(self.connection_id, self._groups())

    def admit_message(self) -> bool:
        """Count one inbound frame; False once the client exceeds `WS_RATE_LIMIT`/`WS_RATE_BURST` (close 1008)."""
        return self._rate.admit()

    # Commands ----------------------------------------------------------------------------------------------

    async def ping(self) -> Pong:
        await self._refresh_presence()
        return Pong(server_time=timezone.now())

    async def acknowledge(self, notification_id: object) -> None:
        """Record the ack (idempotent); batched with every other ack of this process (see `AckBatcher`)."""
        outcome = await _ack_batcher().acknowledge(self.user_id, notification_id)
        if outcome is services.AckOutcome.NOT_FOUND:
            error = services.delivery_not_found(notification_id)
            raise HubError(error.code, error.message)

    async def mark_read(self, notification_id: object) -> None:
        await self._call_service(
            services.delivery_mark_read,
            user_id=self.user_id,
            notification_id=notification_id,
            origin=self.connection_id,
        )

    async def mark_all_read(self) -> None:
        await self._call_service(services.deliveries_mark_all_read, user_id=self.user_id, origin=self.connection_id)

    async def subscribe(self, document_id: object) -> RoomJoined:
        """Join a document room if the user may see the document; the others in it are told."""
        document_id = _parse_document_id(document_id)
        if document_id not in self.rooms:
            if len(self.rooms) >= MAX_ROOMS:
                raise HubError(HubError.LIMIT_EXCEEDED, f"At most {MAX_ROOMS} document rooms per connection.")
            visible = await _in_database_thread(document_is_visible_to)(
                document_id=document_id, user=self.identity.user
            )
            if not visible:
                raise HubError(HubError.FORBIDDEN, f"You may not follow document {document_id}.")
            await self._join([events.document_group(document_id)])
            self.rooms.add(document_id)
            await events.room_presence_send(
                document_id=document_id, user=self.user.as_dict(), state="join", origin=self.connection_id
            )
        member_ids = await presence.room_entered(document_id, self.user_id, self.connection_id)
        usernames = await _in_database_thread(selectors.usernames_of)(member_ids)
        members = [UserRef(id=user_id, username=usernames[user_id]) for user_id in member_ids if user_id in usernames]
        return RoomJoined(document_id=document_id, members=members)

    async def unsubscribe(self, document_id: object) -> RoomLeft:
        document_id = self._joined_room(document_id)
        await self._leave_room(document_id)
        return RoomLeft(document_id=document_id)

    async def typing(self, document_id: object) -> None:
        """Tell the room's other members this user is typing (at most once a second per room)."""
        document_id = self._joined_room(document_id)
        now = time.monotonic()
        if now - self._typing_at.get(document_id, -TYPING_MIN_INTERVAL) < TYPING_MIN_INTERVAL:
            raise HubError(HubError.RATE_LIMITED, f"Send typing at most every {TYPING_MIN_INTERVAL:g} s per document.")
        self._typing_at[document_id] = now
        await events.room_typing_send(document_id=document_id, user=self.user.as_dict(), origin=self.connection_id)

    # Layer messages (no database access: the message carries what the client needs) -------------------------

    def notification_event(self, message: dict) -> NotificationEvent | None:
        """A `notification.created` message as this client should see it, or None if it must not (again)."""
        recipient_ids = message.get("recipient_ids")
        if recipient_ids is not None and self.user_id not in recipient_ids:
            return None
        payload = message["notification"]
        # Overlapping routes of one send, and the sweep's resends, are shown once per connection: a client that
        # has it and has not acked yet is not sent a second copy (see `dispatch.deliveries_resend_on_commit`).
        if not self._first_sight(payload["id"]):
            return None
        self._rate.grant()
        return NotificationEvent(notification=payload, replayed=False)

    def read_event(self, message: dict) -> NotificationsRead | None:
        if message.get("origin") == self.connection_id:
            return None
        return NotificationsRead(ids=list(message["ids"]), unread_count=message["unread_count"])

    def room_event(self, message: dict) -> RoomPresence | RoomTyping | None:
        """A room's presence or typing message, unless it is about this user or a room already left."""
        user = UserRef(**message["user"])
        document_id = message["document_id"]
        if user.id == self.user_id or document_id not in self.rooms:
            return None
        if message["type"] == events.ROOM_TYPING:
            return RoomTyping(document_id=document_id, user=user)
        return RoomPresence(document_id=document_id, user=user, state=message["state"])

    # Internals -------------------------------------------------------------------------------------------------

    def _groups(self) -> list[str]:
        return [
            events.user_group(self.user_id),
            *(events.department_group(department_id) for department_id in self.department_ids),
            *(events.document_group(document_id) for document_id in sorted(self.rooms)),
        ]

    def _first_sight(self, notification_id: str) -> bool:
        if notification_id in self._seen_ids:
            return False
        self._seen_ids[notification_id] = None
        if len(self._seen_ids) > SEEN_IDS_KEPT:
            self._seen_ids.popitem(last=False)
        return True

    def _joined_room(self, document_id: object) -> int:
        document_id = _parse_document_id(document_id)
        if document_id not in self.rooms:
            raise HubError(HubError.NOT_SUBSCRIBED, f"Subscribe to document {document_id} first.")
        return document_id

    async def _leave_room(self, document_id: int) -> None:
        self.rooms.discard(document_id)
        self._typing_at.pop(document_id, None)
        await hub_router().leave(self.connection_id, [events.document_group(document_id)])
        await presence_refresher().settled(self)  # a tick that still saw the room must not re-add it after room_left
        if await presence.room_left(document_id, self.user_id, self.connection_id):
            await events.room_presence_send(
                document_id=document_id, user=self.user.as_dict(), state="leave", origin=self.connection_id
            )

    async def _call_service(self, service, **kwargs) -> None:
        try:
            await _in_database_thread(service)(**kwargs)
        except NotificationError as error:
            raise HubError(error.code, error.message) from None

    async def _join(self, groups: list[str]) -> None:
        await hub_router().join(self.connection_id, self.deliver, groups)

    async def _refresh_presence(self) -> None:
        await presence.connection_alive(
            self.user_id, self.connection_id, department_ids=self.department_ids, document_ids=self.rooms
        )

    async def _close_at_token_expiry(self, seconds_left: float) -> None:
        # Access tokens cannot be revoked; a connection must not outlive the one it opened with.
        await asyncio.sleep(max(seconds_left, 0))
        await self.close_connection(TOKEN_EXPIRED)
