"""Django's Redis cache backend, with one redis-py client per server for the whole process.

Django's RedisCacheClient builds a new `redis.Redis` for every get and set
(redis-py 8 copies and upper-cases its ~170 response callbacks in each), and
every backend object opens its own connection pools. Under ASGI
`django.core.cache.cache` is a new backend object in every request context,
so each API request also opened a new Redis connection. The API's rate limits
make two cache calls per request: together ~0.5 ms of CPU and a TCP connect
per request for nothing. A redis-py client is thread-safe (each
command borrows a connection from its pool), so one per server and options
serves every backend object and thread of the process.
"""

import threading
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis import ConnectionPool, Redis
from redis.typing import KeyT

# (server URL, pool class, pool options) -> client, shared by every backend object of the process.
_clients: dict[tuple[str, type[ConnectionPool], str], Redis] = {}
_clients_lock = threading.Lock()


class SharedClientRedisCacheClient(RedisCacheClient):
    # Set by RedisCacheClient.__init__; django-stubs leaves its private attributes out.
    _servers: list[str]
    _pool_class: type[ConnectionPool]
    _pool_options: dict[str, Any]
    _client: type[Redis]
    _get_connection_pool_index: Callable[[bool], int]

    def get_client(self, key: KeyT | None = None, *, write: bool = False) -> Redis:
        index = self._get_connection_pool_index(write)
        identity = (self._servers[index], self._pool_class, repr(sorted(self._pool_options.items(), key=str)))
        client = _clients.get(identity)
        if client is None:
            with _clients_lock:
                client = _clients.get(identity)
                if client is None:
                    pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    client = _clients[identity] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient


def process_redis_client() -> Redis:
    """The process's shared client of the default cache's Redis (what /readyz pings: no connection of its own)."""
    from django.core.cache import caches

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        raise TypeError("the default cache is not core.cache.RedisCache")
    return backend._cache.get_client(write=True)
