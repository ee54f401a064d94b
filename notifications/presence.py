"""Who is online: a Redis registry of live connections per user, shared by every web process.

Each user has one sorted set whose members are connection ids and whose scores
are the times those connections' heartbeats expire. A connection counts as
live only while its own score lies in the future, so a crashed server leaves
no ghost users: its connections simply stop being refreshed and age out. The
hub refreshes each connection every `NOTIFY_PRESENCE_HEARTBEAT` seconds;
stale members are pruned as a side effect of every write.
"""

import asyncio
import time
import weakref
from collections.abc import Iterable

import redis
import redis.asyncio
from django.conf import settings

KEY_PREFIX = "notifyhub:presence:user:"


def presence_key(user_id: int) -> str:
    return f"{KEY_PREFIX}{int(user_id)}"


def _ttl() -> float:
    return float(settings.NOTIFY_PRESENCE_TTL)


# --- Async side: the hub's consumers -----------------------------------------
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]" = (
    weakref.WeakKeyDictionary()
)


def _async_client() -> redis.asyncio.Redis:
    """One client per event loop: redis.asyncio connections belong to the loop that opened them."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=5, max_connections=1_000)
        _async_clients[loop] = client
    return client


async def connection_alive(user_id: int, connection_id: str) -> None:
    """Register or refresh one connection's heartbeat (on connect and on every heartbeat or ping)."""
    key = presence_key(user_id)
    now = time.time()
    ttl = _ttl()
    async with _async_client().pipeline(transaction=False) as pipe:
        pipe.zadd(key, {connection_id: now + ttl})
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.expire(key, int(ttl) + 1)
        await pipe.execute()


async def connection_gone(user_id: int, connection_id: str) -> None:
    """Remove a connection when it closes."""
    await _async_client().zrem(presence_key(user_id), connection_id)


async def live_connection_count(user_id: int) -> int:
    return await _async_client().zcount(presence_key(user_id), time.time(), "+inf")


# --- Sync side: services and Celery tasks ------------------------------------
_sync_client: redis.Redis | None = None


def _client() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return _sync_client


def online_user_ids(user_ids: Iterable[int]) -> set[int]:
    """The subset of `user_ids` with at least one live connection, in one round trip."""
    user_ids = list(user_ids)
    if not user_ids:
        return set()
    now = time.time()
    pipe = _client().pipeline(transaction=False)
    for user_id in user_ids:
        pipe.zcount(presence_key(user_id), now, "+inf")
    counts = pipe.execute()
    return {user_id for user_id, count in zip(user_ids, counts, strict=True) if count}


def is_online(user_id: int) -> bool:
    return bool(online_user_ids([user_id]))
