"""The only module that talks to the channel layer.

It names the groups (from integer ids only, never from client input),
publishes to them, and adds and removes the hub's connections. Layer messages'
`type` names the consumer handler (`notification.created` →
`notification_created`). Publishing runs after the publishing transaction has
committed: a rolled-back change never reaches a socket.

Each group's members are the hub's *processes* (one `HubRouter` channel per
web process, `notifications.hub.router`), which hand a message to their own
connections in that group; so every message names the `group` it was sent to.

Sync code (views, Celery tasks, the retry sweep) publishes through this
module's own event loop on a daemon thread (`_SyncSideLoop`), never through the
server's: every wait on it is bounded, and a send that fails or does not finish
in time is logged, not raised (the rows are committed; the retry sweep sends
again). The hub's own calls (below `process_channel_new`) are coroutines on the
hub's loop.

Layer messages, their types and exact fields: `notifications.layer_messages`.
"""

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from typing import Any, Literal, TypeVar

from channels.layers import get_channel_layer
from django.db import transaction

from notifications import layer_messages
from notifications.layer_messages import LayerMessage, LayerUser, NotificationPayload, ResolvedNotification
from notifications.models import Notification

# How long sync code waits for its layer sends; past that it logs and goes on (the retry sweep sends again).
SYNC_SEND_TIMEOUT = 5.0

logger = logging.getLogger(__name__)
T = TypeVar("T")


def user_group(user_id: int) -> str:
    return f"user.{int(user_id)}"


def department_group(department_id: int) -> str:
    return f"dept.{int(department_id)}"


def document_group(document_id: int) -> str:
    return f"doc.{int(document_id)}"


def notification_payload(notification: Notification) -> NotificationPayload:
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
        "actions": notification.actions,
    }


def send_notification_now(
    *,
    payload: NotificationPayload,
    user_ids: Iterable[int],
    department_recipients: Mapping[int, Collection[int]] | None = None,
) -> bool:
    """Hand a notification to live connections now, whatever transaction is open (callers run it after commit):
    True once the layer has it, False (logged) if it could not.

    `user_ids` are reached through their own groups; `department_recipients`
    maps a department id to the recipients reached through that department's
    group, so a large department costs one send instead of one per member.
    A connection shows a notification once, however often it is sent.
    """
    message = layer_messages.notification_created(payload)
    sends: list[tuple[str, LayerMessage]] = [(user_group(user_id), message) for user_id in user_ids]
    for department_id, recipient_ids in (department_recipients or {}).items():
        routed = layer_messages.notification_created(payload, recipient_ids=sorted(recipient_ids))
        sends.append((department_group(department_id), routed))
    return _group_send_many(sends)


def notifications_read_on_commit(
    *, user_id: int, notification_ids: list[str], unread_count: int, origin: str | None = None
) -> None:
    """After commit, tell the user's connections (but `origin`) which notifications were read."""
    message = layer_messages.notifications_read(ids=notification_ids, unread_count=unread_count, origin=origin)

    def send_after_commit() -> None:
        _group_send_many([(user_group(user_id), message)])

    transaction.on_commit(send_after_commit, robust=True)


def notifications_resolved_on_commit(
    *, resolved_by_user: Mapping[int, list[ResolvedNotification]], unread_counts: Mapping[int, int]
) -> None:
    """After commit, tell each user's connections which of their notifications were resolved: one message per
    user, with that user's unread count."""
    sends: list[tuple[str, LayerMessage]] = [
        (
            user_group(user_id),
            layer_messages.notifications_resolved(notifications=resolved, unread_count=unread_counts[user_id]),
        )
        for user_id, resolved in resolved_by_user.items()
    ]

    def send_after_commit() -> None:
        _group_send_many(sends)

    transaction.on_commit(send_after_commit, robust=True)


def user_deactivated_on_commit(*, user_id: int) -> None:
    """After commit, have the user's connections close (the user may no longer be notified)."""

    def send_after_commit() -> None:
        _group_send_many([(user_group(user_id), layer_messages.user_deactivated())])

    transaction.on_commit(send_after_commit, robust=True)


def _group_send_many(sends: list[tuple[str, LayerMessage]]) -> bool:
    """Send from sync code, in order; False (logged, never raised) if the layer failed or took too long."""
    if not sends:
        return True

    async def send_all() -> None:
        for group, message in sends:
            await _group_send(group, message)

    _refuse_from_event_loop()  # a bug in the caller, not a layer failure: raised
    try:
        _sync_side_loop.run(send_all, timeout=SYNC_SEND_TIMEOUT)
    except Exception:
        logger.warning(
            "channel layer: %d group send(s) not completed; the retry sweep sends again", len(sends), exc_info=True
        )
        return False
    return True


def layer_round_trip(timeout: float) -> None:
    """Send a message to a new channel and receive it (for /healthz); raises if the layer fails or is too slow."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    # A plain (not process-local "!") channel: its receive is one blocking pop, no shared receive loop.
    channel = f"healthz.{uuid.uuid4().hex}"

    async def round_trip() -> None:
        await layer.send(channel, {"type": "healthz.ping"})
        await layer.receive(channel)

    _sync_side_loop.run(round_trip, timeout=timeout)


class _SyncSideLoop:
    """The event loop, on a daemon thread of its own, where sync code's layer calls run.

    Why not `async_to_sync`: called from a request thread it runs the send on
    the *server's* event loop, and once the server stopped that loop (SIGTERM)
    the thread waited for it forever, holding its database connection; the
    process then never exited. This loop belongs to this module and runs until
    the process exits, and every wait on it is bounded. channels-redis keeps a
    connection pool per event loop, so this loop has its own. Started on first
    use, and again in a forked child (a Celery worker), which has no thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        os.register_at_fork(after_in_child=self._forget)

    def run(self, coroutine_function: Callable[[], Coroutine[Any, Any, T]], *, timeout: float) -> T:
        """Run `coroutine_function()` on the loop; its result, or its exception, or TimeoutError (then cancelled)."""
        _refuse_from_event_loop()
        future = asyncio.run_coroutine_threadsafe(coroutine_function(), self._running_loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"the channel layer did not answer within {timeout:g} s") from None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="channel-layer-sync-sends", daemon=True).start()
            return self._loop

    def _forget(self) -> None:
        # In a forked child the thread is gone (and the lock may have been held by another thread).
        self._lock = threading.Lock()
        self._loop = None


_sync_side_loop = _SyncSideLoop()


def _refuse_from_event_loop() -> None:
    """Raise if called on a running event loop: waiting there would block it (the hub awaits the layer instead)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("a sync layer call from a running event loop")


async def _group_send(group: str, message: LayerMessage) -> None:
    await get_channel_layer().group_send(group, {**message, "group": group})


# --- The hub's side: its process channel, group membership and room messages (async, on the hub's loop) ---


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


async def process_channel_receive_abandoned() -> None:
    """After the router cancelled a stuck receive: let go of what could keep the next one waiting.

    channels-redis removes each received message from a backup queue in a
    task of its own, which holds the lock every receive of this process
    waits for; one hung on a half-open connection would hang every new
    receive too. Those of this event loop are cancelled: their messages stay
    in the backup queue, and the next receive puts them back in front (the
    hub drops a notification it has shown already).
    """
    loop = asyncio.get_running_loop()
    cleaners = [task for task in list(getattr(get_channel_layer(), "receive_cleaners", ())) if task.get_loop() is loop]
    for cleaner in cleaners:
        cleaner.cancel()
    if cleaners:
        await asyncio.wait(cleaners)


async def process_channel_ping(channel_name: str, ping: int) -> None:
    """Send the process's `HubRouter` a ping through the layer, to its own channel (`layer_messages.RouterPing`)."""
    await get_channel_layer().send(channel_name, layer_messages.router_ping(ping))


async def groups_join(channel_name: str, groups: Iterable[str]) -> None:
    """Add a channel to groups, or refresh its membership (channels-redis forgets members after `group_expiry`).

    What channels-redis's `group_add` does for each group (ZADD the channel, then EXPIRE the group), in one
    round trip per Redis host instead of two per group: every connect joins its user's group.
    """
    layer = get_channel_layer()
    joined_at = time.time()
    for host, host_groups in _groups_by_host(layer, channel_name, groups).items():
        async with layer.connection(host).pipeline(transaction=False) as pipe:
            for group in host_groups:
                pipe.zadd(layer._group_key(group), {channel_name: joined_at})
                pipe.expire(layer._group_key(group), layer.group_expiry)
            await pipe.execute()


async def groups_leave(channel_name: str, groups: Iterable[str]) -> None:
    """Remove a channel from groups: channels-redis's `group_discard` (a ZREM) for each, in one round trip per
    Redis host (a server's shutdown leaves every group its connections were in)."""
    layer = get_channel_layer()
    for host, host_groups in _groups_by_host(layer, channel_name, groups).items():
        async with layer.connection(host).pipeline(transaction=False) as pipe:
            for group in host_groups:
                pipe.zrem(layer._group_key(group), channel_name)
            await pipe.execute()


def _groups_by_host(layer, channel_name: str, groups: Iterable[str]) -> dict[int, list[str]]:
    """The groups by the index of the Redis host that keeps them, their names checked as channels-redis checks
    them (TypeError for a bad one; called outside `assert`, which `python -O` would drop with the check)."""
    by_host: dict[int, list[str]] = {}
    for group in groups:
        layer.require_valid_group_name(group)
        by_host.setdefault(layer.consistent_hash(group), []).append(group)
    if by_host:
        layer.require_valid_channel_name(channel_name)
    return by_host


async def room_presence_send(
    *, document_id: int, user: LayerUser, state: Literal["join", "leave"], origin: str
) -> None:
    """Tell a document room that a user joined or left it."""
    message = layer_messages.room_presence(document_id=document_id, user=user, state=state, origin=origin)
    await _group_send(document_group(document_id), message)


async def room_typing_send(*, document_id: int, user: LayerUser, origin: str) -> None:
    """Tell a document room that a user is typing."""
    message = layer_messages.room_typing(document_id=document_id, user=user, origin=origin)
    await _group_send(document_group(document_id), message)
