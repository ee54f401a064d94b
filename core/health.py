"""Reachability checks of what a NotifyHub process needs, shared by `make run` (preflight) and /healthz.

Each check returns None when its part answers, else a one-line reason. The database and Redis checks are
here; an app adds its own to /healthz with `register` from its AppConfig.ready() (the notifications app
adds the channel layer and the hub router), so this package never imports an app.
"""

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection

Check = Callable[[], str | None]


def check_database() -> str | None:
    """Return None when the database answers, else a one-line reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return one_line_reason(error)
    return None


def check_redis(url: str | None = None, timeout: float = 2.0) -> str | None:
    """Return None when Redis answers PING, else a one-line reason."""
    client = redis.Redis.from_url(url or settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as error:
        return one_line_reason(error)
    finally:
        client.close()
    return None


def one_line_reason(error: BaseException) -> str:
    """`Type: first line of the message`, or the type alone for an error without a message."""
    return f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__


# /healthz's checks by name, in the order the answer lists them.
_checks: dict[str, Check] = {"database": check_database, "redis": check_redis}


def register(name: str, check: Check) -> None:
    """Add `check` to /healthz under `name` (once per process, from an AppConfig.ready())."""
    _checks[name] = check


def checks() -> dict[str, Check]:
    return dict(_checks)
