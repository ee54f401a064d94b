"""Reachability checks of what a NotifyHub process needs, shared by `make run` (preflight) and /readyz.

Each check returns None when its part answers, else a one-line reason. The database and Redis checks are
here; an app adds its own to /readyz with `register` from its AppConfig.ready() (the notifications app
adds the channel layer and the hub router), so this package never imports an app.

/readyz reuses the process's own clients (the database connection pool, the cache's Redis client, the channel
layer) and answers from `readiness()`, which runs the checks at most once per READINESS_MAX_AGE seconds per
process, however many probes ask at once: a flood of probes is not a way to load Redis or PostgreSQL.
"""

import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection

from core.cache import process_redis_client

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


def check_process_redis() -> str | None:
    """Return None when Redis answers PING on this process's own client (the cache's), else a one-line reason."""
    try:
        process_redis_client().ping()
    except redis.RedisError as error:
        return one_line_reason(error)
    return None


def one_line_reason(error: BaseException) -> str:
    """`Type: first line of the message`, or the type alone for an error without a message."""
    return f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__


# /readyz's checks by name, in the order the answer lists them.
_checks: dict[str, Check] = {"database": check_database, "redis": check_process_redis}


def register(name: str, check: Check) -> None:
    """Add `check` to /readyz under `name` (once per process, from an AppConfig.ready())."""
    _checks[name] = check


def checks() -> dict[str, Check]:
    return dict(_checks)


Results = dict[str, str | None]  # check name -> None (it answered) or the reason it did not

_results_lock = threading.Lock()
_last_results: tuple[float, Results] | None = None  # (time.monotonic() when the checks ran, their results)


def readiness(max_age: float | None = None) -> Results:
    """Every check's result, at most `max_age` seconds old (READINESS_MAX_AGE by default).

    One caller at a time runs the checks; callers arriving meanwhile wait for it and share its results.
    """
    global _last_results
    max_age = settings.READINESS_MAX_AGE if max_age is None else max_age
    with _results_lock:
        if _last_results is not None and time.monotonic() - _last_results[0] < max_age:
            return _last_results[1]
        results = {name: check() for name, check in _checks.items()}
        _last_results = (time.monotonic(), results)
        return results


def forget_readiness() -> None:
    """Drop the remembered results: the next readiness() runs the checks (when settings change under it)."""
    global _last_results
    with _results_lock:
        _last_results = None


# Settings change only under tests (override_settings): results remembered from before would hide the change.
setting_changed.connect(lambda **_: forget_readiness(), weak=False, dispatch_uid="core.health.forget_readiness")
