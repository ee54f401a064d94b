"""Reachability checks of the services NotifyHub needs, shared by `make run` and /healthz,
and the check of the web process's own hub router (/healthz only).

Each returns None when the service answers, else a one-line reason.
"""

import redis
from django.conf import settings
from django.db import connection

from notifications import events
from notifications.hub.router import process_router_problem


def check_database() -> str | None:
    """Return None when the database answers, else a one-line reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


def check_redis(url: str | None = None, timeout: float = 2.0) -> str | None:
    """Return None when Redis answers PING, else a one-line reason."""
    client = redis.Redis.from_url(url or settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"{type(error).__name__}: {error}".splitlines()[0]
    finally:
        client.close()
    return None


def check_channel_layer(timeout: float = 2.0) -> str | None:
    """Return None when a message makes a round trip through the channel layer, else a one-line reason."""
    try:
        events.layer_round_trip(timeout)
    except TimeoutError:
        return f"no round trip within {timeout:g} s"
    except Exception as error:
        return f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    return None


def check_hub_router() -> str | None:
    """Return None when this process's hub router receives (or it has none: no hub connection yet), else why not."""
    return process_router_problem()
