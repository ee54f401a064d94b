"""core/cache.py: Django's Redis cache, one redis-py client per server for every call, thread and backend."""

import threading

from django.core.cache import caches

from core.cache import RedisCache


def test_the_default_cache_is_the_reused_client_backend_and_it_stores_and_expires(redis_client):
    cache = caches.create_connection("default")
    assert isinstance(cache, RedisCache)

    cache.set("history", [1.5, 2.5], 60)
    assert cache.get("history") == [1.5, 2.5]
    cache.set("history", [3.5], 0)  # a non-positive timeout deletes, as in Django's backend
    assert cache.get("history", "gone") == "gone"


def test_every_call_and_thread_uses_one_client(redis_client):
    cache = caches.create_connection("default")
    clients = [cache._cache.get_client(write=True), cache._cache.get_client()]
    thread = threading.Thread(target=lambda: clients.append(cache._cache.get_client("key")))
    thread.start()
    thread.join()

    assert len({id(client) for client in clients}) == 1


def test_every_backend_object_of_the_process_shares_the_client(redis_client):
    """Under ASGI each request context gets its own backend object: they must not each open a connection pool."""
    first, second = caches.create_connection("default"), caches.create_connection("default")

    assert first._cache.get_client(write=True) is second._cache.get_client(write=True)
