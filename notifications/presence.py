"""Who is online: a Redis registry of live connections per user, shared by every web process.

Each user has one sorted set whose members are connection ids and whose scores
are the times those connections' heartbeats expire. A connection counts as
live only while its own score lies in the future, so a crashed server leaves
no ghost users: its connections simply stop being refreshed and age out. The
hub refreshes each connection at least every `NOTIFY_PRESENCE_HEARTBEAT`
seconds, a process's connections together (`notifications.hub.heartbeat`);
stale members are pruned as a side effect of every write.

The same scheme records which live connections sit in which department group
(so dispatch knows whom one department-wide send reaches) and which are in a
document room (so a room can say who is there). Their members are
`<user id>:<connection id>`.
"""

import asyncio
import hashlib
import time
import weakref
from collections import Counter
from collections.abc import Iterable
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

KEY_PREFIX = "notifyhub:presence:user:"
DEPARTMENT_KEY_PREFIX = "notifyhub:presence:dept:"
ROOM_KEY_PREFIX = "notifyhub:presence:doc:"


def presence_key(user_id: int) -> str:
    return f"{KEY_PREFIX}{int(user_id)}"


def department_key(department_id: int) -> str:
    return f"{DEPARTMENT_KEY_PREFIX}{int(department_id)}"


def room_key(document_id: int) -> str:
    return f"{ROOM_KEY_PREFIX}{int(document_id)}"


def _member(user_id: int, connection_id: str) -> str:
    return f"{int(user_id)}:{connection_id}"


def _user_of(member: bytes | str) -> int:
    if isinstance(member, bytes):
        member = member.decode()
    return int(member.split(":", 1)[0])


def _ttl() -> float:
    return float(settings.NOTIFY_PRESENCE_TTL)


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


def _refresh(pipe, key: str, member: str, now: float, ttl: float) -> None:
    pipe.zadd(key, {member: now + ttl})
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.expire(key, int(ttl) + 1)


class LiveConnection(NamedTuple):
    """What presence records of one open connection: its user, and the department groups and rooms it is in."""

    user_id: int
    connection_id: str
    department_ids: Iterable[int] = ()
    document_ids: Iterable[int] = ()


# `_refresh` for many keys at once, as one command. KEYS: the sorted sets; ARGV: the members' new score, the
# time before which members are stale, the keys' TTL in seconds, then per key: how many members, the members.
_REFRESH_MANY = """
local at = 4
for _, key in ipairs(KEYS) do
    local count = tonumber(ARGV[at])
    for i = at + 1, at + count do
        redis.call('ZADD', key, ARGV[1], ARGV[i])
    end
    at = at + count + 1
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
    redis.call('EXPIRE', key, ARGV[3])
end
return #KEYS
"""
_REFRESH_MANY_SHA = hashlib.sha1(_REFRESH_MANY.encode(), usedforsecurity=False).hexdigest()  # what EVALSHA names it by
# Members per script call: one call runs alone in Redis, so thousands of connections go in several (one pipeline).
REFRESH_MEMBERS_PER_CALL = 1_000


async def connections_alive(connections: Iterable[LiveConnection]) -> None:
    """Register or refresh connections' heartbeats, with their department groups and rooms, in one round trip.

    Runs on connect and on ping (one connection), and on every tick of the
    process's heartbeat (`notifications.hub.heartbeat`: many).
    """
    members_by_key: dict[str, list[str]] = {}
    for user_id, connection_id, department_ids, document_ids in connections:
        members_by_key.setdefault(presence_key(user_id), []).append(connection_id)
        member = _member(user_id, connection_id)
        for department_id in department_ids:
            members_by_key.setdefault(department_key(department_id), []).append(member)
        for document_id in document_ids:
            members_by_key.setdefault(room_key(document_id), []).append(member)
    pairs = [(key, member) for key, members in members_by_key.items() for member in members]
    if not pairs:
        return
    now = time.time()
    ttl = _ttl()
    header = [repr(now + ttl), repr(now), int(ttl) + 1]
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
                    pipe.evalsha(_REFRESH_MANY_SHA, len(keys), *keys, *args)
                await pipe.execute()
            return
        except redis.exceptions.NoScriptError:  # a new or restarted Redis: load the script, then once more
            if attempt:
                raise
            await client.script_load(_REFRESH_MANY)


async def connection_alive(
    user_id: int, connection_id: str, *, department_ids: Iterable[int] = (), document_ids: Iterable[int] = ()
) -> None:
    """Register or refresh one connection's heartbeat, and its department groups and rooms, in one round trip.

    Runs on connect and on ping.
    """
    await connections_alive([LiveConnection(user_id, connection_id, department_ids, document_ids)])


async def connection_gone(
    user_id: int, connection_id: str, *, department_ids: Iterable[int] = (), document_ids: Iterable[int] = ()
) -> None:
    """Remove a connection, with its department groups and rooms, when it closes."""
    member = _member(user_id, connection_id)
    async with _async_client().pipeline(transaction=False) as pipe:
        pipe.zrem(presence_key(user_id), connection_id)
        for department_id in department_ids:
            pipe.zrem(department_key(department_id), member)
        for document_id in document_ids:
            pipe.zrem(room_key(document_id), member)
        await pipe.execute()


async def room_entered(document_id: int, user_id: int, connection_id: str) -> list[int]:
    """Record a connection in a document room; returns the ids of the users present, this one included."""
    now = time.time()
    key = room_key(document_id)
    async with _async_client().pipeline(transaction=False) as pipe:
        _refresh(pipe, key, _member(user_id, connection_id), now, _ttl())
        pipe.zrangebyscore(key, now, "+inf")
        *_, members = await pipe.execute()
    return sorted({_user_of(member) for member in members})


async def room_left(document_id: int, user_id: int, connection_id: str) -> bool:
    """Take a connection out of a room; returns True if the user has no other live connection in it."""
    key = room_key(document_id)
    async with _async_client().pipeline(transaction=False) as pipe:
        pipe.zrem(key, _member(user_id, connection_id))
        pipe.zrangebyscore(key, time.time(), "+inf")
        _, members = await pipe.execute()
    return all(_user_of(member) != user_id for member in members)


async def live_connection_count(user_id: int) -> int:
    return await _async_client().zcount(presence_key(user_id), time.time(), "+inf")


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


def online_user_ids(user_ids: Iterable[int]) -> set[int]:
    """The subset of `user_ids` with at least one live connection, in one round trip."""
    return set(live_connection_counts(user_ids))


def is_online(user_id: int) -> bool:
    return bool(online_user_ids([user_id]))


# ZCOUNT of every key from ARGV[1] up, as one command: a pipeline of 1,000 ZCOUNTs cost ~25 ms of
# client-side packing and parsing per 1,000-member department notification (issue 7), this ~1 ms.
_COUNT_LIVE = """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = redis.call('ZCOUNT', key, ARGV[1], '+inf')
end
return counts
"""


def live_connection_counts(user_ids: Iterable[int]) -> dict[int, int]:
    """Live connections per user, for the users in `user_ids` who have any, in one round trip."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    keys = [presence_key(user_id) for user_id in user_ids]
    counts = _client().register_script(_COUNT_LIVE)(keys=keys, args=[repr(time.time())])
    return {user_id: count for user_id, count in zip(user_ids, counts, strict=True) if count}


def department_connection_counts(department_ids: Iterable[int]) -> dict[int, Counter[int]]:
    """Per department: how many live connections of each user are in its group, in one round trip."""
    department_ids = list(department_ids)
    if not department_ids:
        return {}
    now = time.time()
    pipe = _client().pipeline(transaction=False)
    for department_id in department_ids:
        pipe.zrangebyscore(department_key(department_id), now, "+inf")
    results = pipe.execute()
    return {
        department_id: Counter(_user_of(member) for member in members)
        for department_id, members in zip(department_ids, results, strict=True)
    }
