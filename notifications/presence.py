"""Who is online: a Redis registry of live connections per user, shared by every web process.

Each user has one sorted set whose members are connection ids and whose scores
are the times those connections' heartbeats expire. A connection counts as
live only while its own score lies in the future **and its process is alive**:

- Every web process has a liveness key (`process_key`) that lives
  `NOTIFY_PRESENCE_PROCESS_TTL` seconds and that a thread of the process
  refreshes several times per TTL (`ProcessLiveness`), however busy its event
  loop is. A connection id names its process
  (`hub~<process id>~<protocol>~<opened, epoch seconds>~<random>`, see `new_connection_id`),
  so when a process is killed (`kill -9`, a crashed host) its connections
  stop counting within that TTL, not after their own heartbeat TTL
  (`NOTIFY_PRESENCE_TTL`, a minute), during which notifications were written
  `sent` to a dead process.
- All times are Redis's (`TIME` inside the scripts), never a host's: a web
  host whose clock is a minute behind made all its users look offline.

The hub refreshes each connection at least every `NOTIFY_PRESENCE_HEARTBEAT`
seconds, a process's connections together (`notifications.hub.heartbeat`);
stale members are pruned as a side effect of every write.

**After a Redis restart** the registry is empty until every process has put
its connections back. A process notices within one liveness tick (its key is
gone) and re-registers all its connections at once (`on_registry_lost`). Until
the registry is older than one process TTL (`notifyhub:presence:since`, set by
the first write or read after a restart), a lookup says it is *incomplete*
(`Presence.complete`): a recipient who looks offline may be connected to a
process that has not re-registered yet, so publishing and the sweep hold
their pushes until the registry is complete instead of pushing connected users.

The same scheme records which live connections sit in which department group
(so dispatch knows whom one department-wide send reaches) and which are in a
document room (so a room can say who is there). Their members are
`<user id>:<connection id>`.

The scripts read keys they are not passed (the process keys): fine on one
Redis server (or a primary with replicas), not on Redis Cluster.
"""

import asyncio
import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

KEY_PREFIX = "notifyhub:presence:user:"
DEPARTMENT_KEY_PREFIX = "notifyhub:presence:dept:"
ROOM_KEY_PREFIX = "notifyhub:presence:doc:"
PROCESS_KEY_PREFIX = "notifyhub:presence:process:"
# The live processes (scores: when their liveness ends, Redis time); their keys hold how far behind each is.
PROCESSES_KEY = "notifyhub:presence:processes"
# Per live process: its open connections per protocol and its users (a hash the liveness tick writes, `tally`).
PROCESS_TALLY_KEY_PREFIX = "notifyhub:presence:process-tally:"
# When the registry began (Redis time): younger than a process TTL, it may still miss connections (see above).
SINCE_KEY = "notifyhub:presence:since"
# When a user's last live connection closed (Redis time, seconds): "offline since" for the console's explanations.
LAST_SEEN_KEY_PREFIX = "notifyhub:presence:last_seen:"
LAST_SEEN_TTL_SECONDS = 30 * 24 * 3600

# This process's id: part of its connection ids (`new_connection_id`), and the name of its liveness key.
PROCESS_ID = uuid.uuid4().hex[:16]


def presence_key(user_id: int) -> str:
    return f"{KEY_PREFIX}{int(user_id)}"


def department_key(department_id: int) -> str:
    return f"{DEPARTMENT_KEY_PREFIX}{int(department_id)}"


def room_key(document_id: int) -> str:
    return f"{ROOM_KEY_PREFIX}{int(document_id)}"


def last_seen_key(user_id: int) -> str:
    return f"{LAST_SEEN_KEY_PREFIX}{int(user_id)}"


def process_key(process_id: str = PROCESS_ID) -> str:
    return f"{PROCESS_KEY_PREFIX}{process_id}"


def new_connection_id(protocol: str = "native") -> str:
    """A connection id unique across processes: `hub~<process id>~<protocol>~<opened, epoch seconds>~<random>`.

    The process (first field, as the scripts' `process_alive` and older releases read it) says whether the
    connection still counts; the protocol and opening time let the console show who is connected how and since
    when from the registry alone. Costs nothing extra to write (the id is the member anyway), where keeping them
    in a hash per connection would be one more write per connect and per heartbeat at 10,000 connections.
    """
    return f"hub~{PROCESS_ID}~{protocol}~{int(time.time())}~{uuid.uuid4().hex[:16]}"


class ConnectionIdParts(NamedTuple):
    """What a connection id says: its process, and (ids from this release on) its protocol and opening time."""

    process_id: str | None
    protocol: str | None
    opened_at: datetime | None


def parse_connection_id(connection_id: str) -> ConnectionIdParts:
    """The parts of `connection_id`; None for those an older release's id (`hub~<process>~<random>`) lacks."""
    parts = connection_id.split("~")
    if len(parts) == 5 and parts[0] == "hub" and parts[3].isdigit():
        return ConnectionIdParts(parts[1], parts[2], datetime.fromtimestamp(int(parts[3]), tz=UTC))
    if len(parts) == 3 and parts[0] == "hub":
        return ConnectionIdParts(parts[1], None, None)
    return ConnectionIdParts(None, None, None)


def _member(user_id: int, connection_id: str) -> str:
    return f"{int(user_id)}:{connection_id}"


def _user_of(member: bytes | str) -> int:
    if isinstance(member, bytes):
        member = member.decode()
    return int(member.split(":", 1)[0])


def _ttl() -> float:
    return float(settings.NOTIFY_PRESENCE_TTL)


def process_ttl() -> float:
    return float(settings.NOTIFY_PRESENCE_PROCESS_TTL)


# --- The scripts (Redis time; a member counts while its score is ahead and its process key exists) ---------------

_LUA_PRELUDE = f"""
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local alive = {{}}
local function process_alive(member)
    local process = string.match(member, 'hub~(%w+)~')
    if not process then return true end  -- a connection id that names no process (an older release's)
    local known = alive[process]
    if known == nil then
        known = redis.call('EXISTS', '{PROCESS_KEY_PREFIX}' .. process) == 1
        alive[process] = known
    end
    return known
end
local function live_members(key)
    local members = {{}}
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf')) do
        if process_alive(member) then members[#members + 1] = member end
    end
    return members
end
-- The registry's age in seconds (0 when this call starts it: Redis restarted or was flushed).
local function registry_age()
    local since = redis.call('GET', '{SINCE_KEY}')
    if not since then
        redis.call('SET', '{SINCE_KEY}', tostring(now))
        return 0
    end
    return now - tonumber(since)
end
"""

# Register or refresh members of many keys, and this process's liveness key. KEYS: the sorted sets; ARGV: the
# heartbeat TTL, the process key's TTL, the process key, then per sorted set: how many members, the members.
_REFRESH_MANY = (
    _LUA_PRELUDE
    + """
registry_age()
local process_ms = math.floor(tonumber(ARGV[2]) * 1000)
if not redis.call('SET', ARGV[3], '0', 'PX', process_ms, 'NX') then  -- keep what the liveness thread wrote
    redis.call('PEXPIRE', ARGV[3], process_ms)
end
local expires = now + tonumber(ARGV[1])
local ttl = math.floor(tonumber(ARGV[1])) + 1
local at = 4
for _, key in ipairs(KEYS) do
    local count = tonumber(ARGV[at])
    for i = at + 1, at + count do
        redis.call('ZADD', key, expires, ARGV[i])
    end
    at = at + count + 1
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""
)
# Members per script call: one call runs alone in Redis, so thousands of connections go in several (one pipeline).
REFRESH_MEMBERS_PER_CALL = 1_000

# Live connections per key, and whether the registry is complete. KEYS: the sorted sets; ARGV[1]: the age the
# registry must have to be complete. Returns {count per key..., seconds until complete (0: complete)}.
_COUNT_LIVE = (
    _LUA_PRELUDE
    + """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = #live_members(key)
end
local age = registry_age()
local left = tonumber(ARGV[1]) - age
if left < 0 then left = 0 end
counts[#KEYS + 1] = tostring(left)
return counts
"""
)

# The live members of each key. KEYS: the sorted sets. Returns one list of members per key.
_LIVE_MEMBERS = (
    _LUA_PRELUDE
    + """
local lists = {}
for i, key in ipairs(KEYS) do
    lists[i] = live_members(key)
end
return lists
"""
)

# Enter a room: ZADD the member, return the room's live members. KEYS[1]: the room; ARGV: TTL, member.
_ROOM_ENTER = (
    _LUA_PRELUDE
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('EXPIRE', KEYS[1], math.floor(tonumber(ARGV[1])) + 1)
return live_members(KEYS[1])
"""
)

# Leave a room: ZREM the member, return the room's live members. KEYS[1]: the room; ARGV[1]: the member.
_ROOM_LEAVE = (
    _LUA_PRELUDE
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
return live_members(KEYS[1])
"""
)

# A process's liveness tick: refresh its key (its value: how many seconds behind the process is) and its place
# among the live processes; say whether the key was still there, and when the registry began (recording it if
# this starts it). KEYS[1]: the process key, KEYS[2]: the processes; ARGV: the TTL, the process id, seconds
# behind. Returns {1 if the key was there else 0, the registry's start}.
_PROCESS_ALIVE = (
    _LUA_PRELUDE
    + f"""
registry_age()
local was_there = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[3], 'PX', math.floor(tonumber(ARGV[1]) * 1000))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return {{was_there, redis.call('GET', '{SINCE_KEY}')}}
"""
)

# How far behind the furthest-behind live process is, in seconds. KEYS[1]: the processes.
_HUB_BEHIND = (
    _LUA_PRELUDE
    + f"""
local most = 0
for _, process in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
    local behind = tonumber(redis.call('GET', '{PROCESS_KEY_PREFIX}' .. process) or '0') or 0
    if behind > most then most = behind end
end
return tostring(most)
"""
)


# Every live process: its id, how far behind it is, and its tally (flat field/value list). KEYS[1]: the processes.
_WEB_PROCESSES = (
    _LUA_PRELUDE
    + f"""
local found = {{}}
for _, process in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
    local behind = redis.call('GET', '{PROCESS_KEY_PREFIX}' .. process) or '0'
    found[#found + 1] = {{process, behind, redis.call('HGETALL', '{PROCESS_TALLY_KEY_PREFIX}' .. process)}}
end
return found
"""
)


class _Script:
    """A Lua script run by EVALSHA, loaded on first use and again after Redis restarted (NOSCRIPT).

    redis-py's own `Script` sends SCRIPT EXISTS first inside a pipeline: a round trip more per call.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    # A script's reply is whatever its Lua returns: Any.
    def __call__(self, client: redis.Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    async def run_async(self, client: redis.asyncio.Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


# After a connection closed: if its user has no live connection left, record when (the user's last seen).
# KEYS[1]: the user's sorted set, KEYS[2]: their last-seen key; ARGV[1]: its TTL in seconds.
_RECORD_LAST_SEEN_IF_OFFLINE = (
    _LUA_PRELUDE
    + """
if #live_members(KEYS[1]) > 0 then return 0 end
redis.call('SET', KEYS[2], tostring(now), 'EX', ARGV[1])
return 1
"""
)

REFRESH_MANY = _Script(_REFRESH_MANY)
COUNT_LIVE = _Script(_COUNT_LIVE)
LIVE_MEMBERS = _Script(_LIVE_MEMBERS)
ROOM_ENTER = _Script(_ROOM_ENTER)
ROOM_LEAVE = _Script(_ROOM_LEAVE)
PROCESS_ALIVE = _Script(_PROCESS_ALIVE)
HUB_BEHIND = _Script(_HUB_BEHIND)
RECORD_LAST_SEEN_IF_OFFLINE = _Script(_RECORD_LAST_SEEN_IF_OFFLINE)
WEB_PROCESSES = _Script(_WEB_PROCESSES)


# --- Async side: the hub's consumers -----------------------------------------
MAX_ASYNC_CONNECTIONS = 1_000
POOL_WAIT_SECONDS = 10
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]" = (
    weakref.WeakKeyDictionary()
)


def _async_client() -> redis.asyncio.Redis:
    """One client per event loop: redis.asyncio connections belong to the loop that opened them."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # A blocking pool: past MAX_ASYNC_CONNECTIONS a call waits for a free connection. redis-py 8's default
        # pool raises instead, which lost the presence cleanup of thousands of clients disconnecting at once
        # (they then looked online until their heartbeat expired).
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.REDIS_URL, socket_timeout=5, max_connections=MAX_ASYNC_CONNECTIONS, timeout=POOL_WAIT_SECONDS
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


class LiveConnection(NamedTuple):
    """What presence records of one open connection: its user, and the department groups and rooms it is in."""

    user_id: int
    connection_id: str
    department_ids: Iterable[int] = ()
    document_ids: Iterable[int] = ()


async def connections_alive(connections: Iterable[LiveConnection], *, online_again: bool = False) -> None:
    """Register or refresh connections' heartbeats, with their department groups and rooms, in one round trip.

    Runs on connect and on ping (one connection), and on every tick of the
    process's heartbeat (`notifications.hub.heartbeat`: many). Refreshes the
    process's liveness key too, so a connection is never registered under a
    process that does not look alive. With `online_again`, the users' "last seen"
    records go in the same round trip: they are online now.
    """
    members_by_key: dict[str, list[str]] = {}
    user_ids: set[int] = set()
    for user_id, connection_id, department_ids, document_ids in connections:
        user_ids.add(user_id)
        members_by_key.setdefault(presence_key(user_id), []).append(connection_id)
        member = _member(user_id, connection_id)
        for department_id in department_ids:
            members_by_key.setdefault(department_key(department_id), []).append(member)
        for document_id in document_ids:
            members_by_key.setdefault(room_key(document_id), []).append(member)
    pairs = [(key, member) for key, members in members_by_key.items() for member in members]
    if not pairs:
        return
    header: list[str | int] = [repr(_ttl()), repr(process_ttl()), process_key()]
    client = _async_client()
    for attempt in range(2):
        try:
            async with client.pipeline(transaction=False) as pipe:
                for start in range(0, len(pairs), REFRESH_MEMBERS_PER_CALL):
                    keys, args = [], list(header)
                    for key, chunk in groupby(pairs[start : start + REFRESH_MEMBERS_PER_CALL], key=itemgetter(0)):
                        members = [member for _, member in chunk]
                        keys.append(key)
                        args += [len(members), *members]
                    pipe.evalsha(REFRESH_MANY.sha, len(keys), *keys, *args)
                if online_again:
                    pipe.delete(*(last_seen_key(user_id) for user_id in sorted(user_ids)))
                await pipe.execute()
            return
        except redis.exceptions.NoScriptError:  # a new or restarted Redis: load the script, then once more
            if attempt:
                raise
            await client.script_load(REFRESH_MANY.source)


async def connection_alive(
    user_id: int, connection_id: str, *, department_ids: Iterable[int] = (), document_ids: Iterable[int] = ()
) -> None:
    """Register or refresh one connection's heartbeat, and its department groups and rooms, in one round trip.

    Runs on connect and on ping. The user's "last seen" goes in the same round trip: an old one must not outlive
    a connection that ends without a goodbye (a killed process).
    """
    await connections_alive([LiveConnection(user_id, connection_id, department_ids, document_ids)], online_again=True)


async def connection_gone(
    user_id: int, connection_id: str, *, department_ids: Iterable[int] = (), document_ids: Iterable[int] = ()
) -> None:
    """Remove a connection, with its department groups and rooms, when it closes."""
    await connections_gone([LiveConnection(user_id, connection_id, department_ids, document_ids)])


# Connections removed per round trip by `connections_gone` (a server's shutdown removes all of its own).
GONE_PER_ROUND_TRIP = 1_000


async def connections_gone(connections: Iterable[LiveConnection]) -> None:
    """Remove connections, with their department groups and rooms, when they close; then record the "last seen"
    of each of their users left with no live connection. One round trip per `GONE_PER_ROUND_TRIP` connections."""
    connections = list(connections)
    client = _async_client()
    for start in range(0, len(connections), GONE_PER_ROUND_TRIP):
        chunk = connections[start : start + GONE_PER_ROUND_TRIP]
        user_ids = sorted({connection.user_id for connection in chunk})
        async with client.pipeline(transaction=False) as pipe:
            for user_id, connection_id, department_ids, document_ids in chunk:
                member = _member(user_id, connection_id)
                pipe.zrem(presence_key(user_id), connection_id)
                for department_id in department_ids:
                    pipe.zrem(department_key(department_id), member)
                for document_id in document_ids:
                    pipe.zrem(room_key(document_id), member)
            for user_id in user_ids:
                _record_last_seen_if_offline(pipe, user_id)
            try:
                await pipe.execute()
            except redis.exceptions.NoScriptError:  # a new or restarted Redis: the removals ran; record last seen
                await client.script_load(RECORD_LAST_SEEN_IF_OFFLINE.source)
                async with client.pipeline(transaction=False) as again:
                    for user_id in user_ids:
                        _record_last_seen_if_offline(again, user_id)
                    await again.execute()


def _record_last_seen_if_offline(pipe, user_id: int) -> None:
    keys = [presence_key(user_id), last_seen_key(user_id)]
    pipe.evalsha(RECORD_LAST_SEEN_IF_OFFLINE.sha, len(keys), *keys, LAST_SEEN_TTL_SECONDS)


async def room_entered(document_id: int, user_id: int, connection_id: str) -> list[int]:
    """Record a connection in a document room; returns the ids of the users present, this one included."""
    members = await ROOM_ENTER.run_async(
        _async_client(), [room_key(document_id)], [repr(_ttl()), _member(user_id, connection_id)]
    )
    return sorted({_user_of(member) for member in members})


async def room_left(document_id: int, user_id: int, connection_id: str) -> bool:
    """Take a connection out of a room; returns True if the user has no other live connection in it."""
    members = await ROOM_LEAVE.run_async(_async_client(), [room_key(document_id)], [_member(user_id, connection_id)])
    return all(_user_of(member) != user_id for member in members)


async def live_connection_count(user_id: int) -> int:
    [members] = await LIVE_MEMBERS.run_async(_async_client(), [presence_key(user_id)], [])
    return len(members)


# --- Sync side: services and Celery tasks ------------------------------------
_sync_client: redis.Redis | None = None


def _client() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return _sync_client


@receiver(setting_changed)
def _forget_sync_client(*, setting: str, **kwargs) -> None:
    global _sync_client
    if setting == "REDIS_URL":  # tests point presence at another Redis
        _sync_client = None
        process_liveness.forget_client()


@dataclass(frozen=True)
class Presence:
    """A lookup: live connections per online user, and whether the registry can be trusted about the others."""

    connection_counts: dict[int, int]
    # Seconds until the registry is complete (0: it is). Just after a Redis restart a connected user may look
    # offline until their process re-registers: do not push them before then.
    incomplete_for: float = 0.0

    @property
    def complete(self) -> bool:
        return self.incomplete_for <= 0


def lookup(user_ids: Iterable[int]) -> Presence:
    """Who of `user_ids` is online (live connections each), and whether the registry is complete, in one round trip."""
    user_ids = list(user_ids)
    keys = [presence_key(user_id) for user_id in user_ids]
    *counts, incomplete_for = COUNT_LIVE(_client(), keys, [repr(process_ttl())])
    return Presence(
        connection_counts={user_id: count for user_id, count in zip(user_ids, counts, strict=True) if count},
        incomplete_for=float(incomplete_for),
    )


def live_connection_counts(user_ids: Iterable[int]) -> dict[int, int]:
    """Live connections per user, for the users in `user_ids` who have any, in one round trip."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    return lookup(user_ids).connection_counts


def online_user_ids(user_ids: Iterable[int]) -> set[int]:
    """The subset of `user_ids` with at least one live connection, in one round trip."""
    return set(live_connection_counts(user_ids))


def is_online(user_id: int) -> bool:
    return bool(online_user_ids([user_id]))


# User keys per count in `online_counts` (and per SCAN step).
ONLINE_COUNT_KEYS_PER_CALL = 1_000


def online_counts() -> tuple[int, int]:
    """How many users are online across the hub, and their live connections (for /metrics).

    A SCAN of the users' keys, in steps so that Redis is never held for long, and one count per
    `ONLINE_COUNT_KEYS_PER_CALL` of them: a few round trips per thousand users online.
    """
    client = _client()
    users = connections = 0
    keys = list(set(client.scan_iter(match=f"{KEY_PREFIX}*", count=ONLINE_COUNT_KEYS_PER_CALL)))
    for start in range(0, len(keys), ONLINE_COUNT_KEYS_PER_CALL):
        *counts, _incomplete_for = COUNT_LIVE(
            client, keys[start : start + ONLINE_COUNT_KEYS_PER_CALL], [repr(process_ttl())]
        )
        users += sum(1 for count in counts if count)
        connections += sum(counts)
    return users, connections


def last_seen(user_ids: Iterable[int]) -> dict[int, datetime]:
    """When each of `user_ids` last had a live connection, for those whose last connection closed in an orderly
    way within LAST_SEEN_TTL_SECONDS (Redis time), in one round trip. A user whose connections ended with a
    killed process has none: nobody said goodbye for them."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    values = _client().mget([last_seen_key(user_id) for user_id in user_ids])
    return {
        user_id: datetime.fromtimestamp(float(value), tz=UTC)
        for user_id, value in zip(user_ids, values, strict=True)
        if value is not None
    }


def hub_behind_seconds() -> float:
    """How far behind the furthest-behind live web process is (see `ProcessLiveness`), in one round trip."""
    return float(HUB_BEHIND(_client(), [PROCESSES_KEY], []))


@dataclass(frozen=True)
class WebProcess:
    """A live web process as its liveness tick last described it (`ProcessLiveness`)."""

    process_id: str
    behind_seconds: float
    connections: dict[str, int]  # open connections per protocol ("native", "signalr")
    users: int  # distinct users among them

    @property
    def connection_count(self) -> int:
        return sum(self.connections.values())


def web_processes() -> list[WebProcess]:
    """The live web processes with their connections per protocol, users and lag, in one round trip."""
    found = []
    for process_id, behind, flat_tally in WEB_PROCESSES(_client(), [PROCESSES_KEY], []):
        tally = {_text(flat_tally[i]): int(flat_tally[i + 1]) for i in range(0, len(flat_tally), 2)}
        users = tally.pop("users", 0)
        found.append(WebProcess(_text(process_id), float(behind), tally, users))
    return sorted(found, key=lambda process: process.process_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def live_connection_ids(user_ids: Iterable[int]) -> dict[int, list[str]]:
    """The live connection ids of each of `user_ids` who has any, in one round trip."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    lists = LIVE_MEMBERS(_client(), [presence_key(user_id) for user_id in user_ids], [])
    return {
        user_id: sorted(_text(member) for member in members)
        for user_id, members in zip(user_ids, lists, strict=True)
        if members
    }


def online_connection_ids() -> dict[int, list[str]]:
    """Every online user's live connection ids: a SCAN of the users' keys, like `online_counts` (for the console's
    list of who is online, read when an operator opens it; the dashboard's numbers come from `web_processes`)."""
    client = _client()
    user_ids = sorted(
        {int(_text(key).removeprefix(KEY_PREFIX)) for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000)}
    )
    found: dict[int, list[str]] = {}
    for start in range(0, len(user_ids), ONLINE_COUNT_KEYS_PER_CALL):
        found.update(live_connection_ids(user_ids[start : start + ONLINE_COUNT_KEYS_PER_CALL]))
    return found


def department_connection_counts(department_ids: Iterable[int]) -> dict[int, Counter[int]]:
    """Per department: how many live connections of each user are in its group, in one round trip."""
    department_ids = list(department_ids)
    if not department_ids:
        return {}
    lists = LIVE_MEMBERS(_client(), [department_key(department_id) for department_id in department_ids], [])
    return {
        department_id: Counter(_user_of(member) for member in members)
        for department_id, members in zip(department_ids, lists, strict=True)
    }


# --- Who of a notification's recipients is online (read by publishing) ---------


@dataclass(frozen=True)
class OnlineRecipients:
    """Who of a notification's recipients is online, read before its rows are written (`online_recipients`)."""

    connection_counts: Mapping[int, int]  # live connections per online recipient
    department_routes: Mapping[int, set[int]]  # per department: the online members one send to its group reaches
    # Seconds until the presence registry is complete again (0: it is). Just after a Redis restart a connected
    # user may look offline (Presence): their push waits for the registry (notifications.dispatch).
    incomplete_for: float = 0.0


NOBODY_ONLINE = OnlineRecipients(connection_counts={}, department_routes={})


def online_recipients(
    *, recipient_ids: Collection[int], department_member_ids: Mapping[int, Collection[int]] | None = None
) -> OnlineRecipients:
    """Who is online now, and which department groups reach whom; nobody if presence is unreachable.

    Publishing reads this before it writes the rows, so the online recipients' rows start as `sent`.
    With Redis away everyone's row starts `pending`, and dispatch or the retry sweep takes it from there.
    """
    try:
        found = lookup(recipient_ids)
        live = found.connection_counts
        routes = _department_routes(live, department_member_ids or {}) if live else {}
    except redis.RedisError:
        logger.warning("presence unreachable at publish: every delivery starts pending", exc_info=True)
        return NOBODY_ONLINE
    return OnlineRecipients(connection_counts=live, department_routes=routes, incomplete_for=found.incomplete_for)


def _department_routes(
    live: Mapping[int, int], department_member_ids: Mapping[int, Collection[int]]
) -> dict[int, set[int]]:
    """Per department, the online members that one send to its group reaches on every connection."""
    if not department_member_ids:
        return {}
    in_groups = department_connection_counts(department_member_ids.keys())
    routes: dict[int, set[int]] = {}
    routed: set[int] = set()
    for department_id, member_ids in department_member_ids.items():
        connections: Mapping[int, int] = in_groups.get(department_id, {})
        reached = {
            user_id
            for user_id in member_ids
            if user_id in live and user_id not in routed and connections.get(user_id, 0) >= live[user_id]
        }
        if reached:
            routes[department_id] = reached
            routed |= reached
    return routes


# --- The process's liveness ----------------------------------------------------


class ProcessLiveness:
    """Keeps this process's liveness key alive from a thread of its own, and notices when Redis lost it.

    A thread, not a task: an event loop busy for seconds (a reconnect storm) must not make every connection of
    the process look dead. It ticks `TICKS_PER_TTL` times per `NOTIFY_PRESENCE_PROCESS_TTL`. When a tick finds
    the key gone (Redis restarted, or was unreachable for longer than the TTL), it calls every callback given
    to `on_registry_lost` (thread-safe ones: the hub's re-register everything on their own loops). Each tick
    also publishes how far behind the process's hub is (`behind_seconds`, read by the retry sweep and by
    publishing: see `hub_behind_seconds`).
    """

    TICKS_PER_TTL = 5

    def __init__(self) -> None:
        # How many seconds behind the process's hub is (notifications.hub.load): published with its key.
        self.behind_seconds: Callable[[], float] = lambda: 0.0
        # The process's open connections per protocol, and "users": published with its key for the console.
        self.tally: Callable[[], Mapping[str, int]] = dict
        self._lost_callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._client: redis.Redis | None = None
        self._failing = False
        self._registry_since: bytes | None = None  # when the registry began, as the last tick read it

    def forget_client(self) -> None:
        """Connect anew on the next tick (REDIS_URL changed)."""
        self._client = None
        self._registry_since = None

    def start(self) -> None:
        """Start the thread (idempotent). The hub calls this when its first connection opens."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._tick_forever, name="presence-liveness", daemon=True)
                self._thread.start()

    def on_registry_lost(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback not in self._lost_callbacks:
                self._lost_callbacks.append(callback)

    def tick(self) -> bool:
        """Refresh the key once; returns False if the registry had lost this process (and tells the callbacks).

        Lost: the key was gone (Redis was unreachable for longer than its TTL), or the registry began anew since
        the last tick (Redis restarted). The second is what a restart shows for certain: a connection of this
        process that opens or refreshes in between puts the key back (it must count at once), and so hid the
        restart from the first test, leaving every other connection of the process unregistered until its next
        heartbeat. The hub's first connection sets the key before the thread starts, so a missing key at the
        first tick also means it was lost (a false alarm costs one refresh of the process's connections).
        """
        if self._client is None:
            self._client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        behind = f"{max(self.behind_seconds(), 0.0):.3f}"
        was_there, since = PROCESS_ALIVE(
            self._client, [process_key(), PROCESSES_KEY], [repr(process_ttl()), PROCESS_ID, behind]
        )
        self._publish_tally(self._client)
        registry_began_anew = self._registry_since is not None and since != self._registry_since
        self._registry_since = since
        if was_there and not registry_began_anew:
            return True
        logger.warning("presence: the registry lost this process (Redis restarted?); re-registering its connections")
        for callback in list(self._lost_callbacks):
            try:
                callback()
            except Exception:
                logger.exception("presence: a re-registration callback failed")
        return False

    def _publish_tally(self, client: redis.Redis) -> None:
        """Write the process's connection tally (`web_processes` reads it), living as long as its liveness key.

        Why a tally per process rather than counting the registry: the console's numbers per protocol and per
        process then cost one small read of a few keys per refresh, however many connections there are, where
        counting them from the registry reads every connection id (a SCAN of every user's key) each time. Its
        cost: one pipelined HSET per tick (`TICKS_PER_TTL` per TTL) per process.
        """
        key = f"{PROCESS_TALLY_KEY_PREFIX}{PROCESS_ID}"
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={field: str(count) for field, count in {"users": 0, **self.tally()}.items()})
            pipe.pexpire(key, int(process_ttl() * 1000))
            pipe.execute()

    def _tick_forever(self) -> None:
        stop = threading.Event()
        while True:
            try:
                self.tick()
                if self._failing:
                    logger.warning("presence: the liveness key is refreshed again")
                    self._failing = False
            except redis.RedisError:
                if not self._failing:
                    logger.warning("presence: cannot refresh this process's liveness key", exc_info=True)
                    self._failing = True
            except Exception:  # never let the thread die: the process would look dead while it serves
                logger.exception("presence: liveness tick failed")
            stop.wait(process_ttl() / self.TICKS_PER_TTL)


process_liveness = ProcessLiveness()
