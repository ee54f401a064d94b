"""One channel-layer channel per process, and the process's connections behind it.

The hub's groups (`user.<id>`, `dept.<id>`, `doc.<id>`; see
`notifications.layer`) have one member per *process*, not per connection:
the process's `HubRouter`. A group message therefore crosses Redis once per
process, and the router hands it to that process's connections in the group
by a plain function call that writes the frame to each socket there and then,
or queues it behind a send that has to wait (see `HubConsumer.deliver`), in
order, on the event loop.

Why: with one layer channel per connection, a notification to a
1,000-member department cost 1,000 Redis list entries and 1,000 consumer
wake-ups, each through Channels' `await_many_dispatch` (new tasks and an
`asyncio.wait` per message); that was most of a fan-out's time and CPU.
Nothing here waits on a socket: a client that reads slowly (uvicorn pauses
a send when the client's buffers are full) holds up only its own writer.

Membership: a connection joins the groups it may hear (`join`) and leaves
them (`leave`); the router adds itself to a group in the layer when its
first local connection joins and removes itself when the last one leaves,
under a lock per group stripe so the two never race. channels-redis forgets
group members after `group_expiry`; the router re-adds itself to all its
groups six times per `group_expiry`, and at once after the layer failed or
its Redis restarted and lost every group (a new Redis run id, checked every
presence heartbeat; the process's presence refresher, `heartbeat.py`, puts the
connections' presence back within a heartbeat).

Supervision: the receive task is the process's only reader of its channel;
if it ended or hung, the process would go on reporting its users online and
deliver nothing. A watchdog task (`_watch_forever`) restarts the receive and
refresh tasks when they end (logged), and every `PING_INTERVAL` seconds while
the router has members it sends itself a ping through the layer, to its own
channel. A receive that hears nothing for `RECEIVE_STUCK_AFTER` seconds while a
ping waits (say a half-open Redis connection: with `socket_timeout=None` its
BLPOP waits forever) is cancelled and started again, and so are the layer's
clean-ups of received messages still pending on this loop (one hung the same
way would hold up every new receive: `layer.process_channel_receive_abandoned`).
Messages sent meanwhile wait in Redis for the new receive (up to the layer's
`expiry`).

What the process can read, from any thread (plain attributes written on the
router's loop): `health_problem()`, for /healthz (`process_router_problem`) and
/metrics (the watchdog records it every round),
and `behind_seconds()`: how long the router's pings take to come back, i.e.
the layer backlog of its channel (`process_behind_seconds`).

One router per event loop (the tests run several loops in one process;
a server runs one).
"""

import asyncio
import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping

from django.conf import settings

from notifications import layer, layer_messages, metrics, presence
from notifications.hub import load
from notifications.hub.per_loop import one_per_event_loop

logger = logging.getLogger(__name__)

# Re-join every group this often per `group_expiry` (settings.CHANNEL_LAYERS), so a live router is never forgotten.
REFRESHES_PER_GROUP_EXPIRY = 6
# After the layer failed, wait this long before receiving (and re-joining) again.
RETRY_SECONDS = 1.0
LOCK_STRIPES = 64
# The watchdog looks every PING_INTERVAL seconds; a ping goes out when none is waiting and the router has members.
PING_INTERVAL = 2.0
# A receive that hears nothing this long while a ping waits is stuck: cancelled and started again.
RECEIVE_STUCK_AFTER = 10.0
# /healthz fails a router whose pings have gone unanswered this long (restarts included).
UNHEALTHY_AFTER = 30.0

Deliver = Callable[[dict], None]


class HubRouter:
    """This process's member of the hub's groups; see the module docstring."""

    def __init__(self) -> None:
        self.channel_name: str | None = None
        # group -> {connection id: how to hand that connection a layer message}
        self._members: dict[str, dict[str, Deliver]] = {}
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self._started: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # "receive", "refresh", "watchdog" -> its task (the watchdog restarts the other two)
        self._tasks: dict[str, asyncio.Task] = {}
        self._rejoins: set[asyncio.Task] = set()
        # The ping waiting to come back: its number and when it was sent (time.monotonic()), None when none waits.
        self._ping = 0
        self._ping_sent_at: float | None = None
        self._received_at = time.monotonic()  # when the receive last got a message, of any kind
        self._ping_failures = 0
        # Read from any thread (health, resend pacing), written only on the router's loop: plain floats.
        self.unanswered_since: float | None = None  # when the oldest unanswered ping was sent (restarts included)
        self.round_trip_seconds = 0.0  # how long the last ping took to come back

    # Membership ------------------------------------------------------------------------------------------------

    async def join(self, connection_id: str, deliver: Deliver, groups: Iterable[str]) -> None:
        """From now on, hand `deliver` every message sent to any of `groups` (returns once the layer knows)."""
        await self._start()
        for group in groups:
            members = self._members.get(group)
            if members is None:
                async with self._lock(group):
                    members = self._members.get(group)
                    if members is None:
                        await layer.groups_join(self._open_channel_name, [group])
                        members = self._members[group] = {}
            members[connection_id] = deliver

    async def leave(self, connection_id: str, groups: Iterable[str]) -> None:
        """Stop handing the connection these groups' messages (at once, whatever Redis does; never raises)."""
        await self.leave_many({connection_id: groups})

    async def leave_many(self, groups_by_connection: Mapping[str, Iterable[str]]) -> None:
        """`leave` for many connections at once (a server's shutdown): the groups they empty in one round trip."""
        emptied = []
        for connection_id, groups in groups_by_connection.items():
            for group in groups:
                members = self._members.get(group)
                if members is not None and members.pop(connection_id, None) is not None and not members:
                    emptied.append((group, members))
        if not emptied:
            return
        async with contextlib.AsyncExitStack() as held:
            for stripe in sorted({self._stripe(group) for group, _ in emptied}):  # in order: no two leaves deadlock
                await held.enter_async_context(self._locks[stripe])
            # A group somebody joined meanwhile stays.
            leaving = [group for group, members in emptied if self._members.get(group) is members and not members]
            for group in leaving:
                del self._members[group]
            try:
                await layer.groups_leave(self._open_channel_name, leaving)
            except Exception:  # the layer forgets the membership after group_expiry; messages meanwhile are ignored
                logger.warning("hub router: could not leave %s", ", ".join(leaving[:5]), exc_info=True)

    def connection_count(self, group: str) -> int:
        return len(self._members.get(group, ()))

    def _lock(self, group: str) -> asyncio.Lock:
        return self._locks[self._stripe(group)]

    @staticmethod
    def _stripe(group: str) -> int:
        return hash(group) % LOCK_STRIPES

    # Receiving -------------------------------------------------------------------------------------------------

    @property
    def _open_channel_name(self) -> str:
        """`channel_name` from `_open` on: every join, leave, receive and ping follows it."""
        assert self.channel_name is not None, "the router is not open"
        return self.channel_name

    async def _start(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._open())
        await asyncio.shield(self._started)

    async def _open(self) -> None:
        try:
            self.channel_name = await layer.process_channel_new()
        except BaseException:
            self._started = None  # the next join tries again
            raise
        self._loop = asyncio.get_running_loop()
        for name in ("receive", "refresh", "watchdog"):
            self._start_task(name)
        with _routers_lock:
            _routers.add(self)
        # The layer's connections retry their commands, so a Redis restart may never fail the receive loop:
        # the process's liveness thread notices the restart within a second and has every group joined again.
        presence.process_liveness.on_registry_lost(functools.partial(self._redis_lost, self._loop))
        load.watch_layer_backlog(process_behind_seconds)

    def _start_task(self, name: str) -> None:
        work = {"receive": self._receive_forever, "refresh": self._refresh_forever, "watchdog": self._watch_forever}
        self._tasks[name] = asyncio.create_task(work[name](), name=f"hub-router-{name}")

    def _redis_lost(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the liveness thread: Redis lost the groups with everything else; join them all again on the loop."""
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._rejoin_soon)

    def _rejoin_soon(self) -> None:
        logger.warning("hub router: Redis lost its groups; joining them again")
        task = asyncio.create_task(self._rejoin_all())
        self._rejoins.add(task)
        task.add_done_callback(self._rejoins.discard)

    async def _receive_forever(self) -> None:
        while True:
            try:
                message = await layer.process_channel_receive(self._open_channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("hub router: the channel layer failed; joining its groups again", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                while not await self._rejoin_all():
                    await asyncio.sleep(RETRY_SECONDS)
                continue
            self._received_at = time.monotonic()
            if message.get("type") == layer_messages.ROUTER_PING:
                self._ping_returned(message.get("ping"))
            else:
                self.route(message)

    def route(self, message: dict) -> None:
        """Hand a layer message to every local connection in the group it was sent to."""
        members = self._members.get(message.get("group", ""))  # "": no group, so no members
        if not members:
            return
        if isinstance(message.get("recipient_ids"), list):
            # Every connection in the group looks itself up in it: once a set, not a scan of 1,000 ids each.
            message["recipient_ids"] = frozenset(message["recipient_ids"])
        for connection_id, deliver in list(members.items()):
            try:
                deliver(message)
            except Exception:  # one connection's failure must not cost the others their message
                logger.exception("hub router: delivery to %s failed", connection_id)

    async def _refresh_forever(self) -> None:
        """Re-join every group before the layer forgets it, or at once when Redis lost it."""
        loop = asyncio.get_running_loop()
        server_ids = await self._server_ids()
        refreshed_at = loop.time()
        while True:
            refresh_every = layer.group_expiry_seconds() / REFRESHES_PER_GROUP_EXPIRY
            await asyncio.sleep(min(settings.NOTIFY_PRESENCE_HEARTBEAT, refresh_every))
            current = await self._server_ids()
            restarted = current is not None and server_ids is not None and current != server_ids
            server_ids = current or server_ids
            if restarted:
                logger.warning("hub router: Redis restarted; joining its groups again")
            due = loop.time() - refreshed_at >= refresh_every
            if (restarted or due) and await self._rejoin_all():
                refreshed_at = loop.time()

    @staticmethod
    async def _server_ids() -> tuple[str, ...] | None:
        try:
            return await layer.layer_server_ids()
        except Exception:  # Redis away: the receive loop notices too
            return None

    async def _rejoin_all(self) -> bool:
        try:
            await layer.groups_join(self._open_channel_name, list(self._members))
        except Exception:  # Redis still away: try again later
            logger.warning("hub router: could not join its groups again", exc_info=True)
            return False
        return True

    # Supervision (see the module docstring) ------------------------------------------------------------------

    async def _watch_forever(self) -> None:
        """Every PING_INTERVAL: restart a task that ended; ping, or restart a receive that is stuck; tell /metrics."""
        while True:
            metrics.record_router_health(healthy=self.health_problem() is None)
            await asyncio.sleep(PING_INTERVAL)
            try:
                await self._watch()
            except Exception:  # the watchdog must outlive whatever it watches
                logger.exception("hub router: watchdog round failed")

    async def _watch(self) -> None:
        for name in ("receive", "refresh"):
            task = self._tasks[name]
            if task.done():
                error = None if task.cancelled() else task.exception()
                logger.error("hub router: its %s task ended; starting it again", name, exc_info=error)
                self._start_task(name)
        if not self._members:  # nothing to deliver, so nothing is late: no ping until a connection joins
            self._ping_sent_at = self.unanswered_since = None
            return
        if self._ping_sent_at is None:
            await self._send_ping()
            return
        silent_for = time.monotonic() - max(self._ping_sent_at, self._received_at)
        if silent_for > RECEIVE_STUCK_AFTER:
            logger.error(
                "hub router: its receive heard nothing for %.0f s while a ping waited; starting it again", silent_for
            )
            await self._restart_receive()
            await self._send_ping()  # the waiting one is given up (its answer, if any, is ignored)

    async def _restart_receive(self) -> None:
        stuck = self._tasks["receive"]
        stuck.cancel()
        # Let it let go of the layer's receive lock before the new receive asks for it.
        await asyncio.wait([stuck], timeout=RECEIVE_STUCK_AFTER)
        try:
            async with asyncio.timeout(RECEIVE_STUCK_AFTER):
                await layer.process_channel_receive_abandoned()
        except Exception:  # the new receive is started regardless: at worst it waits for the next round
            logger.warning("hub router: could not let go of the stuck receive's clean-up", exc_info=True)
        self._start_task("receive")

    async def _send_ping(self) -> None:
        now = time.monotonic()
        self._ping += 1
        # Set before sending: the answer may come back before the send returns.
        self._ping_sent_at = now
        if self.unanswered_since is None:
            self.unanswered_since = now
        try:
            async with asyncio.timeout(RECEIVE_STUCK_AFTER):
                await layer.process_channel_ping(self._open_channel_name, self._ping)
        except Exception:  # Redis away (the receive notices too): the next round tries again
            self._ping_sent_at = None
            if not self._ping_failures:
                logger.warning("hub router: could not send its ping; trying every round", exc_info=True)
            self._ping_failures += 1
            return
        self._ping_failures = 0

    def _ping_returned(self, ping: object) -> None:
        if ping != self._ping or self._ping_sent_at is None:
            return  # a ping given up on
        self.round_trip_seconds = time.monotonic() - self._ping_sent_at
        self._ping_sent_at = self.unanswered_since = None

    # What the process reads, from any thread -------------------------------------------------------------------

    def behind_seconds(self) -> float:
        """How far behind the receive is: the age of the oldest unanswered ping, or the last round trip if longer.

        That is the backlog of the router's channel in the layer (what waits
        to be routed), in seconds. Cheap and safe from any thread.
        """
        since = self.unanswered_since
        waiting = time.monotonic() - since if since is not None else 0.0
        return max(waiting, self.round_trip_seconds)

    def health_problem(self) -> str | None:
        """None when the router receives, else a one-line problem. From any thread."""
        receive = self._tasks.get("receive")
        if receive is None:
            return None  # not started: no connection has joined yet
        if receive.done():
            return "receive task not running"
        since = self.unanswered_since
        if since is not None and (waiting := time.monotonic() - since) > UNHEALTHY_AFTER:
            return f"no ping round trip for {waiting:.0f} s"
        return None

    def serves_this_process(self) -> bool:
        """Whether this router's event loop runs (a server's does until it exits; a finished test's does not)."""
        return self._loop is not None and self._loop.is_running()


# hub_router(): the router of the running event loop.
hub_router = one_per_event_loop(HubRouter)

# Every router started in this process, for the readers on other threads below.
_routers: weakref.WeakSet[HubRouter] = weakref.WeakSet()
_routers_lock = threading.Lock()


def process_routers() -> list[HubRouter]:
    """This process's started routers whose event loop runs: a server has at most one. From any thread."""
    with _routers_lock:
        routers = list(_routers)
    return [router for router in routers if router.serves_this_process()]


def process_router_problem() -> str | None:
    """For /healthz: the router's problem, or None (also when the process has no router: no hub connection yet)."""
    for router in process_routers():
        if problem := router.health_problem():
            return problem
    return None


def process_behind_seconds() -> float:
    """How far behind this process's router is (see `HubRouter.behind_seconds`); 0.0 without one. Any thread."""
    return max((router.behind_seconds() for router in process_routers()), default=0.0)
