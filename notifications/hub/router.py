"""One channel-layer channel per process, and the process's connections behind it.

The hub's groups (`user.<id>`, `dept.<id>`, `doc.<id>`; see
`notifications.events`) have one member per *process*, not per connection:
the process's `HubRouter`. A group message therefore crosses Redis once per
process, and the router hands it to that process's connections in the group
by a plain function call that queues it for the connection's writer (see
`HubConsumer.deliver`), in order, on the event loop.

Why (issue 7): with one layer channel per connection, a notification to a
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

One router per event loop (the tests run several loops in one process;
a server runs one).
"""

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable

from django.conf import settings

from notifications import events, presence
from notifications.hub.per_loop import one_per_event_loop

logger = logging.getLogger(__name__)

# Re-join every group this often per `group_expiry` (settings.CHANNEL_LAYERS), so a live router is never forgotten.
REFRESHES_PER_GROUP_EXPIRY = 6
# After the layer failed, wait this long before receiving (and re-joining) again.
RETRY_SECONDS = 1.0
LOCK_STRIPES = 64

Deliver = Callable[[dict], None]


class HubRouter:
    """This process's member of the hub's groups; see the module docstring."""

    def __init__(self) -> None:
        self.channel_name: str | None = None
        # group -> {connection id: how to hand that connection a layer message}
        self._members: dict[str, dict[str, Deliver]] = {}
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self._started: asyncio.Future | None = None
        self._tasks: list[asyncio.Task] = []
        self._rejoins: set[asyncio.Task] = set()

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
                        await events.groups_join(self.channel_name, [group])
                        members = self._members[group] = {}
            members[connection_id] = deliver

    async def leave(self, connection_id: str, groups: Iterable[str]) -> None:
        """Stop handing the connection these groups' messages (at once, whatever Redis does; never raises)."""
        emptied = []
        for group in groups:
            members = self._members.get(group)
            if members is not None and members.pop(connection_id, None) is not None and not members:
                emptied.append((group, members))
        for group, members in emptied:
            async with self._lock(group):
                if self._members.get(group) is not members or members:  # somebody joined meanwhile
                    continue
                del self._members[group]
                try:
                    await events.groups_leave(self.channel_name, [group])
                except Exception:  # the layer forgets the membership after group_expiry; messages meanwhile are ignored
                    logger.warning("hub router: could not leave %s", group, exc_info=True)

    def connection_count(self, group: str) -> int:
        return len(self._members.get(group, ()))

    def _lock(self, group: str) -> asyncio.Lock:
        return self._locks[hash(group) % LOCK_STRIPES]

    # Receiving -------------------------------------------------------------------------------------------------

    async def _start(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._open())
        await asyncio.shield(self._started)

    async def _open(self) -> None:
        try:
            self.channel_name = await events.process_channel_new()
        except BaseException:
            self._started = None  # the next join tries again
            raise
        self._tasks = [
            asyncio.create_task(self._receive_forever(), name="hub-router-receive"),
            asyncio.create_task(self._refresh_forever(), name="hub-router-refresh"),
        ]
        # The layer's connections retry their commands, so a Redis restart may never fail the receive loop:
        # the process's liveness thread notices the restart within a second and has every group joined again.
        presence.process_liveness.on_registry_lost(functools.partial(self._redis_lost, asyncio.get_running_loop()))

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
                message = await events.process_channel_receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("hub router: the channel layer failed; joining its groups again", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                while not await self._rejoin_all():
                    await asyncio.sleep(RETRY_SECONDS)
                continue
            self.route(message)

    def route(self, message: dict) -> None:
        """Hand a layer message to every local connection in the group it was sent to."""
        members = self._members.get(message.get("group"))
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
            refresh_every = events.group_expiry_seconds() / REFRESHES_PER_GROUP_EXPIRY
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
            return await events.layer_server_ids()
        except Exception:  # Redis away: the receive loop notices too
            return None

    async def _rejoin_all(self) -> bool:
        try:
            await events.groups_join(self.channel_name, list(self._members))
        except Exception:  # Redis still away: try again later
            logger.warning("hub router: could not join its groups again", exc_info=True)
            return False
        return True


# hub_router(): the router of the running event loop.
hub_router = one_per_event_loop(HubRouter)
