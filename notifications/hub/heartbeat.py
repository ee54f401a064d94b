"""The process's presence heartbeat: one timer keeps every open connection's presence fresh.

Presence (`notifications.presence`) counts a connection as live until
`NOTIFY_PRESENCE_TTL` after its last refresh. A session refreshes it itself on
connect and on ping; this refresher does it for all of the process's sessions
at least every `NOTIFY_PRESENCE_HEARTBEAT` seconds.

Why one per process: with a timer per connection, each sending its
own pipeline, 2,000 idle clients cost ~100 Redis round trips a second, a good
part of a core, and a task each. Now the refresher ticks `TICKS_PER_HEARTBEAT`
times per heartbeat, and each tick refreshes in one round trip
(`presence.connections_alive`) the sessions refreshed longest ago: every one
that would be late by the next tick, and at least a `TICKS_PER_HEARTBEAT`-th
of all of them, so a crowd that connected together (after a deploy) spreads
over the interval instead of coming due at once every heartbeat. A tick reads
each session's departments and rooms when it runs.

Sessions `register` once `open()` succeeded and `unregister` on `close()`. A
tick whose round trip fails (Redis away) is logged once per failure streak and
its sessions are retried on the next tick; if the task dies anyway, the next
`register` starts it again. The task ends by itself when no session is left.

When Redis lost the registry (a restart: the process's liveness key is gone,
`presence.ProcessLiveness` notices within a fraction of
NOTIFY_PRESENCE_PROCESS_TTL), one tick refreshes every session at once instead
of a share per tick: a connected user must not look offline for a heartbeat.

One refresher per event loop (the tests run several loops in one process;
a server runs one).
"""

import asyncio
import functools
import logging
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Collection
from typing import Protocol, cast

from django.conf import settings

from notifications import presence
from notifications.hub import load
from notifications.hub.per_loop import one_per_event_loop


class RefreshedSession(Protocol):
    """What the refresher reads of a hub session (`session.HubSession`): whose presence, in which groups."""

    # Read-only here (properties), so a session's list and set of ids are Collections too.
    @property
    def connection_id(self) -> str: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def department_ids(self) -> Collection[int]: ...
    @property
    def rooms(self) -> Collection[int]: ...


logger = logging.getLogger(__name__)

# Ticks per NOTIFY_PRESENCE_HEARTBEAT: every second by default, each refreshing about 1/20 of the connections.
TICKS_PER_HEARTBEAT = 20


class ProcessTally:
    """The process's registered connections per protocol and its distinct users, over every event loop.

    The liveness thread publishes it each tick (`presence.ProcessLiveness.tally`) for the console's numbers, so
    they cost a read of one hash per process rather than a count of every connection in the registry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # loops add and remove; the liveness thread reads
        self._protocols: Counter[str] = Counter()
        self._users: Counter[int] = Counter()

    def add(self, session: RefreshedSession) -> None:
        with self._lock:
            self._protocols[presence.parse_connection_id(session.connection_id).protocol or "unknown"] += 1
            self._users[cast(int, session.user_id)] += 1

    def remove(self, session: RefreshedSession) -> None:
        with self._lock:
            _count_down(self._protocols, presence.parse_connection_id(session.connection_id).protocol or "unknown")
            _count_down(self._users, cast(int, session.user_id))

    def counts(self) -> dict[str, int]:
        """Open connections per protocol, and "users"."""
        with self._lock:
            return {**self._protocols, "users": len(self._users)}


def _count_down(counter: Counter, key) -> None:
    """One less of `key`, dropping it at zero (in place: a copy of the counter per disconnect made a storm of
    disconnects quadratic in the connections)."""
    if counter[key] <= 1:
        counter.pop(key, None)
    else:
        counter[key] -= 1


process_tally = ProcessTally()


class PresenceRefresher:
    """Refreshes the presence of this event loop's open sessions; see the module docstring."""

    def __init__(self) -> None:
        # connection id -> (session, loop time of its last refresh); least recently refreshed first
        self._sessions: OrderedDict[str, tuple[RefreshedSession, float]] = OrderedDict()
        self._task: asyncio.Task | None = None
        # The tick whose round trip is under way: the connection ids it refreshes, done when it is over.
        self._in_flight: frozenset[str] = frozenset()
        self._tick_done: asyncio.Future | None = None
        self._failed_ticks = 0
        self._one_tick_at_a_time = asyncio.Lock()
        self._listening = False  # to the liveness thread's news of a lost registry
        self._everyone_due = False  # the next tick refreshes every session (the registry was lost)

    def register(self, session: RefreshedSession) -> None:
        """After `session.open()` succeeded (it has just refreshed its presence): keep it fresh from now on."""
        loop = asyncio.get_running_loop()
        if session.connection_id not in self._sessions:
            process_tally.add(session)
        self._sessions[session.connection_id] = (session, loop.time())
        if self._task is None or self._task.done():
            if self._task is not None and not self._task.cancelled() and self._task.exception() is not None:
                logger.error("presence refresher stopped; starting it again", exc_info=self._task.exception())
            self._task = asyncio.create_task(self._refresh_forever(), name="hub-presence-refresher")
        if not self._listening:
            self._listening = True
            presence.process_liveness.on_registry_lost(functools.partial(self._registry_lost, loop))
        presence.process_liveness.behind_seconds = load.process_behind_seconds
        presence.process_liveness.tally = process_tally.counts
        presence.process_liveness.start()

    def _registry_lost(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the liveness thread: Redis lost the registry; have the loop put every session back."""
        if not loop.is_closed():
            loop.call_soon_threadsafe(self.refresh_all)

    def refresh_all(self) -> None:
        """Refresh every session at once, now (on the loop; the liveness thread calls it when Redis lost them)."""
        self._everyone_due = True
        if self._sessions:
            asyncio.get_running_loop().create_task(self._tick_now())

    async def _tick_now(self) -> None:
        loop = asyncio.get_running_loop()
        await self._tick(now=loop.time(), due_before=loop.time())

    async def unregister(self, session: RefreshedSession) -> None:
        """On `session.close()`: refresh it no more; returns once no refresh of it is in flight."""
        if self._sessions.pop(session.connection_id, None) is not None:
            process_tally.remove(session)
        await self.settled(session)

    async def settled(self, session: RefreshedSession) -> None:
        """Returns once no tick that read the session's groups and rooms is in flight.

        Call it before taking the session (or one of its rooms) out of
        presence: a tick's ZADD that reaches Redis after the ZREM would put the
        member back for a whole TTL. Waiting for the tick's answer (a round
        trip, or the Redis timeout at worst) orders the two, where marking the
        session closed could not: the tick's command may already be on its way.
        Later ticks no longer see it (unregistered, or the room already left).
        """
        if self._tick_done is not None and session.connection_id in self._in_flight:
            await asyncio.shield(self._tick_done)  # a cancelled close must not cancel the tick

    async def _refresh_forever(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        while self._sessions:
            if task is not None and task.cancelling():
                # Cancelled (server or loop shutdown) while a refresh ran: redis-py can turn the CancelledError it
                # received into a connection error, which a failed tick logs and survives. Honour the cancel.
                raise asyncio.CancelledError
            heartbeat = settings.NOTIFY_PRESENCE_HEARTBEAT
            tick = heartbeat / TICKS_PER_HEARTBEAT
            due = loop.time() + tick
            await asyncio.sleep(tick)
            load.record_loop_lag(loop.time() - due)
            # Refreshed at or before `due_before`, a session would be late by the next tick.
            await self._tick(now=loop.time(), due_before=loop.time() + tick - heartbeat)

    async def _tick(self, *, now: float, due_before: float) -> None:
        """Refresh, in one round trip, the sessions due and this tick's share of the others (module docstring)."""
        async with self._one_tick_at_a_time:  # `settled` waits for the one tick in flight
            if self._everyone_due:
                self._everyone_due, due_before = False, math.inf
                logger.warning("presence: registering all %d connections again", len(self._sessions))
            await self._refresh_batch(now=now, due_before=due_before)

    async def _refresh_batch(self, *, now: float, due_before: float) -> None:
        share = math.ceil(len(self._sessions) / TICKS_PER_HEARTBEAT)
        batch: list[RefreshedSession] = []
        for session, refreshed_at in self._sessions.values():
            if len(batch) >= share and refreshed_at > due_before:
                break
            batch.append(session)
        if not batch:
            return
        connections = [
            presence.LiveConnection(
                cast(int, session.user_id),  # registered by `open`, which has read it from the token
                session.connection_id,
                tuple(session.department_ids),
                tuple(session.rooms),
            )
            for session in batch
        ]
        self._in_flight = frozenset(connection.connection_id for connection in connections)
        self._tick_done = asyncio.get_running_loop().create_future()
        try:
            await presence.connections_alive(connections)
        except Exception:
            if not self._failed_ticks:
                logger.warning("presence refresh failed; trying again every tick", exc_info=True)
            self._failed_ticks += 1
            if due_before == math.inf:
                self._everyone_due = True  # the next tick tries everyone again
            return  # the batch stays first in line for the next tick
        finally:
            self._tick_done.set_result(None)
            self._tick_done, self._in_flight = None, frozenset()
        if self._failed_ticks:
            logger.warning("presence refresh works again after %d failed ticks", self._failed_ticks)
            self._failed_ticks = 0
        for session in batch:
            if session.connection_id in self._sessions:  # not closed meanwhile
                self._sessions[session.connection_id] = (session, now)
                self._sessions.move_to_end(session.connection_id)


# presence_refresher(): the presence refresher of the running event loop.
presence_refresher = one_per_event_loop(PresenceRefresher)
