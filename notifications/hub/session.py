"""The protocol-neutral core of one hub connection.

A `HubSession` is what a connected client *is*, whatever wire protocol it
speaks: who it is (the authenticated identity and when its token expires),
where it is (presence, its user and department groups, the document rooms it
joined), what it has already been shown (de-duplication by notification id),
and what it may ask (ack, read, read all, perform an action, ping, subscribe,
unsubscribe, typing). It talks to services, selectors, `notifications.presence` and
`notifications.layer`; it never builds a frame and never touches a socket.

The seam: a protocol (the native JSON protocol in `native.py`, SignalR in
`signalr/`) is a `HubConsumer` subclass (`consumer.py`) that parses its frames
into calls on this class and renders the `ClientMessage`s and `HubError`s it
gets back. Every rule lives here once:

- `open(raw_token)` authenticates, joins the groups, registers presence,
  hands the session to the process's presence heartbeat (`heartbeat.py`),
  starts the token-expiry timer, and returns `Hello`;
  `replay()` then yields what the user has not acknowledged, oldest first.
- Commands (`acknowledge`, `mark_read`, ...) return the client message to send back,
  if any, or raise `HubError(code, message)`; the connection stays up.
- Layer messages become client messages (`client_messages.py`) through
  `notification_message`, `read_message` and `room_message`, which return
  None for what this client must not see
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
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from core.errors import DomainError
from notifications import layer, layer_messages, presence, selectors, services
from notifications.hub.acks import ack_batcher
from notifications.hub.auth import HubIdentity, identity_of, user_id_of, validate_access_token
from notifications.hub.client_messages import (
    ActionPerformed,
    Hello,
    NotificationMessage,
    NotificationResolved,
    NotificationsRead,
    Pong,
    RoomJoined,
    RoomLeft,
    RoomPresence,
    RoomTyping,
    UnreadCount,
    UserRef,
)
from notifications.hub.closes import TOKEN_EXPIRED, CloseReason
from notifications.hub.database import in_database_thread
from notifications.hub.errors import HubError
from notifications.hub.heartbeat import presence_refresher
from notifications.hub.rate_limit import MessageRateLimit
from notifications.hub.router import hub_router
from notifications.services import ReplayPage
from workflow.selectors import document_is_visible_to

logger = logging.getLogger(__name__)

REPLAY_PAGE_SIZE = 200
# Notification ids remembered per connection to drop duplicates (replay vs live, user vs department group).
SEEN_IDS_KEPT = 2_000
MAX_ROOMS = 50
TYPING_MIN_INTERVAL = 1.0


@dataclass(frozen=True)
class _ConnectionStart:
    identity: HubIdentity
    department_ids: list[int]
    unread_count: int
    first_replay_page: ReplayPage


def _load_connection(token: AccessToken) -> _ConnectionStart:
    """Everything a connection needs from the database at connect (sync): one query, and the first replay page
    only if something waits."""
    summary = selectors.connect_summary(user_id_of(token))
    identity = identity_of(token, summary.user if summary is not None else None)  # AuthRefused: unknown, inactive
    assert summary is not None  # (a missing user was refused)
    if summary.inbox.unacknowledged:
        first_replay_page = services.deliveries_replay_page(user_id=identity.user.pk, limit=REPLAY_PAGE_SIZE)
    else:  # nothing to replay (most connects): no replay query. A later commit arrives live (presence is up).
        first_replay_page = ReplayPage(notifications=[], cursor=None)
    return _ConnectionStart(
        identity=identity,
        department_ids=summary.department_ids,
        unread_count=summary.inbox.unread,
        first_replay_page=first_replay_page,
    )


def _mark_read_and_count(*, user_id: int, notification_id: uuid.UUID | str, origin: str) -> int:
    """Mark one notification read, then count what is left unread (sync; one trip to the database thread)."""
    services.delivery_mark_read(user_id=user_id, notification_id=notification_id, origin=origin)
    return selectors.unread_count(user_id)


def _mark_all_read_and_count(*, user_id: int, origin: str) -> int:
    services.deliveries_mark_all_read(user_id=user_id, origin=origin)
    return selectors.unread_count(user_id)


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
        # A timer, not a sleeping task: a task and its coroutine would be ~1.5 KiB on every idle connection.
        self._token_expiry: asyncio.TimerHandle | None = None
        self._expiry_close: asyncio.Future | None = None
        self._rate = MessageRateLimit(rate=settings.WS_RATE_LIMIT, burst=settings.WS_RATE_BURST)
        self._replay_start: ReplayPage | None = None
        self._closed = False

    # Lifecycle -----------------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.identity is not None and not self._closed

    @property
    def user(self) -> UserRef:
        assert self.identity is not None, "the session is not open"
        user = self.identity.user
        return UserRef(id=user.pk, username=user.get_username())

    @property
    def _open_user_id(self) -> int:
        """`user_id` from `open` on, which reads it from the token: commands, rooms and groups all follow it."""
        assert self.user_id is not None, "the session is not open"
        return self.user_id

    async def open(self, raw_token: str | None) -> Hello:
        """Authenticate and go live: groups, presence and its heartbeat, expiry timer. Raises `AuthRefused`.

        Every notification committed while this runs arrives live or in the
        replay (or both: de-duplicated), because each route is joined before
        presence advertises it, and the replay is read after that:
        user group → presence → [database: user, departments, unread count,
        first replay page] → department groups → department presence (a
        user in no department has nothing more to register).
        """
        token = validate_access_token(raw_token)
        self.user_id = user_id_of(token)
        await self._join([layer.user_group(self.user_id)])
        await presence.connection_alive(self.user_id, self.connection_id)
        start = await in_database_thread(_load_connection)(token)  # AuthRefused: close() cleans up
        self.identity = start.identity
        self.department_ids = start.department_ids
        self._replay_start = start.first_replay_page
        await self._join(self._groups())
        if self.department_ids:
            await self._refresh_presence()
        presence_refresher().register(self)
        seconds_left = (start.identity.token_expires_at - timezone.now()).total_seconds()
        self._token_expiry = asyncio.get_running_loop().call_later(max(seconds_left, 0), self._token_expired)
        return Hello(
            user=self.user,
            department_ids=start.department_ids,
            unread_count=start.unread_count,
            server_time=timezone.now(),
            token_expires_at=start.identity.token_expires_at,
            heartbeat_seconds=settings.NOTIFY_PRESENCE_HEARTBEAT,
        )

    async def replay(self) -> AsyncIterator[NotificationMessage]:
        """Yield the notifications this user has not acknowledged, oldest first (after `open`)."""
        page = self._replay_start
        assert page is not None, "replay follows open, once"
        self._replay_start = None
        while True:
            for payload in page.notifications:
                if self._first_sight(payload["id"]):
                    self._rate.grant()
                    yield NotificationMessage(notification=payload, replayed=True)
            if page.cursor is None:
                return
            page = await in_database_thread(services.deliveries_replay_page)(
                user_id=self._open_user_id, after=page.cursor, limit=REPLAY_PAGE_SIZE
            )

    async def close(self) -> None:
        """Leave rooms, groups and presence (on disconnect; safe to call twice, or after a failed `open`)."""
        await sessions_close([self])

    def _mark_closed(self) -> bool:
        """Closed from now on (its timers stop); whether there is presence or a group to leave (first call only)."""
        if self._closed:
            return False
        self._closed = True
        if self._token_expiry is not None:
            self._token_expiry.cancel()
        return self.user_id is not None

    def admit_message(self) -> bool:
        """Count one inbound frame; False once the client exceeds `WS_RATE_LIMIT`/`WS_RATE_BURST` (close 1008)."""
        return self._rate.admit()

    # Commands ----------------------------------------------------------------------------------------------

    async def ping(self) -> Pong:
        await self._refresh_presence()
        return Pong(server_time=timezone.now())

    async def acknowledge(self, notification_id: object) -> None:
        """Record the ack (idempotent); batched with every other ack of this process (see `AckBatcher`)."""
        outcome = await ack_batcher().acknowledge(self._open_user_id, notification_id)
        if outcome is services.AckOutcome.NOT_FOUND:
            error = services.delivery_not_found(notification_id)
            raise HubError(error.code, error.message)

    async def mark_read(self, notification_id: object) -> UnreadCount:
        """Mark it read; answers with the user's unread count (the other connections get `read` + the count)."""
        count = await self._call_service(
            _mark_read_and_count, user_id=self.user_id, notification_id=notification_id, origin=self.connection_id
        )
        return UnreadCount(count=count, request="read")

    async def mark_all_read(self) -> UnreadCount:
        """Mark everything read; answers with the user's unread count (0 unless something arrived meanwhile)."""
        count = await self._call_service(_mark_all_read_and_count, user_id=self.user_id, origin=self.connection_id)
        return UnreadCount(count=count, request="read_all")

    async def perform_action(self, notification_id: object, action: object, comment: object = None) -> ActionPerformed:
        """Perform one of the notification's actions as this user (services/actions.py: the API's rules)."""
        if not isinstance(action, str) or not action:
            raise HubError(HubError.INVALID, "action must be the id of one of the notification's actions.")
        if comment is not None and not isinstance(comment, str):
            raise HubError(HubError.INVALID, "comment must be a string.")
        assert self.identity is not None, "the session is not open"
        result = await self._call_service(
            services.notification_action_perform,
            notification_id=notification_id,
            user=self.identity.user,
            action=action,
            comment=comment or "",
        )
        return ActionPerformed(
            notification_id=result.notification_id,
            action=result.action,
            outcome=result.outcome,
            performed_at=result.performed_at,
            already_performed=result.already_performed,
        )

    async def subscribe(self, document_id: object) -> RoomJoined:
        """Join a document room if the user may see the document; the others in it are told."""
        document_id = _parse_document_id(document_id)
        if document_id not in self.rooms:
            if len(self.rooms) >= MAX_ROOMS:
                raise HubError(HubError.LIMIT_EXCEEDED, f"At most {MAX_ROOMS} document rooms per connection.")
            assert self.identity is not None, "the session is not open"
            visible = await in_database_thread(document_is_visible_to)(document_id=document_id, user=self.identity.user)
            if not visible:
                raise HubError(HubError.FORBIDDEN, f"You may not follow document {document_id}.")
            await self._join([layer.document_group(document_id)])
            self.rooms.add(document_id)
            await layer.room_presence_send(
                document_id=document_id, user=self.user.as_dict(), state="join", origin=self.connection_id
            )
        member_ids = await presence.room_entered(document_id, self._open_user_id, self.connection_id)
        usernames = await in_database_thread(selectors.usernames_of)(member_ids)
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
        await layer.room_typing_send(document_id=document_id, user=self.user.as_dict(), origin=self.connection_id)

    # Layer messages to client messages (no database access: the layer message carries what the client needs)

    def notification_message(self, message: layer_messages.NotificationCreated) -> NotificationMessage | None:
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
        return NotificationMessage(notification=payload, replayed=False)

    def read_message(self, message: dict) -> NotificationsRead | None:
        if message.get("origin") == self.connection_id:
            return None
        return NotificationsRead(ids=list(message["ids"]), unread_count=message["unread_count"])

    def resolved_messages(self, message: dict) -> list[NotificationResolved]:
        """A `notifications.resolved` message as this client is told it: one per notification (every connection
        of the user, the one that caused it too: a resolution comes from the work, not from a connection)."""
        return [
            NotificationResolved(
                id=resolved["id"],
                resolution=resolved["resolution"],
                resolved_at=resolved["resolved_at"],
                unread_count=message["unread_count"],
            )
            for resolved in message["notifications"]
        ]

    def room_message(self, message: dict) -> RoomPresence | RoomTyping | None:
        """A room's presence or typing message, unless it is about this user or a room already left."""
        user = UserRef(**message["user"])
        document_id = message["document_id"]
        if user.id == self.user_id or document_id not in self.rooms:
            return None
        if message["type"] == layer_messages.ROOM_TYPING:
            return RoomTyping(document_id=document_id, user=user)
        return RoomPresence(document_id=document_id, user=user, state=message["state"])

    # Internals -------------------------------------------------------------------------------------------------

    def _groups(self) -> list[str]:
        return [
            layer.user_group(self._open_user_id),
            *(layer.department_group(department_id) for department_id in self.department_ids),
            *(layer.document_group(document_id) for document_id in sorted(self.rooms)),
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
        await hub_router().leave(self.connection_id, [layer.document_group(document_id)])
        await presence_refresher().settled(self)  # a tick that still saw the room must not re-add it after room_left
        if await presence.room_left(document_id, self._open_user_id, self.connection_id):
            await layer.room_presence_send(
                document_id=document_id, user=self.user.as_dict(), state="leave", origin=self.connection_id
            )

    async def _call_service(self, service, **kwargs):
        try:
            return await in_database_thread(service)(**kwargs)
        except DomainError as error:  # the notifications' own, or the workflow's when an action decides a task
            raise HubError(error.code, error.message) from None

    async def _join(self, groups: list[str]) -> None:
        await hub_router().join(self.connection_id, self.deliver, groups)

    async def _refresh_presence(self) -> None:
        await presence.connection_alive(
            self._open_user_id, self.connection_id, department_ids=self.department_ids, document_ids=self.rooms
        )

    def _token_expired(self) -> None:
        # Access tokens cannot be revoked; a connection must not outlive the one it opened with.
        # Kept: the event loop holds its tasks weakly, and this one must run to the end.
        self._expiry_close = asyncio.ensure_future(self.close_connection(TOKEN_EXPIRED))


async def sessions_close(sessions: Iterable[HubSession]) -> None:
    """`HubSession.close()` for many sessions at once: the server's shutdown closes all of its own.

    Each one's rooms are left as `close` leaves them; their presence goes in
    one Redis round trip, and the groups they empty in another, where one by
    one each took its own (5,000 at once had the Redis pool open a connection
    for each, past the shutdown's grace). Safe to call twice; never raises.
    """
    closing = [session for session in sessions if session._mark_closed()]  # all marked before the first wait
    if not closing:
        return
    try:
        refresher = presence_refresher()
        for session in closing:
            await refresher.unregister(session)  # before their presence goes, or a tick could put it back
        for session in closing:
            for document_id in list(session.rooms):
                await session._leave_room(document_id)
        await presence.connections_gone(
            presence.LiveConnection(session._open_user_id, session.connection_id, session.department_ids)
            for session in closing
        )
    except Exception:  # Redis gone: presence ages out on its own
        ids = ", ".join(session.connection_id for session in closing[:3])
        logger.warning("%d hub connection(s) left without cleanup (%s)", len(closing), ids, exc_info=True)
    finally:
        await hub_router().leave_many({session.connection_id: session._groups() for session in closing})
