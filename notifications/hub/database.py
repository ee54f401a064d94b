"""How the hub's event loop reaches the database: in a worker thread, with a short-lived connection."""

import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from core.database import TRANSIENT_DATABASE_ERRORS

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def in_database_thread(
    function: Callable[P, R], *, executor: ThreadPoolExecutor | None = None
) -> Callable[P, Coroutine[Any, Any, R]]:
    """`function` run in a worker thread with its own short-lived database connection, retried once if the
    database failed it transiently (a lost connection: PostgreSQL restarted, a backend was terminated).

    Every hub call is idempotent (reads, acks, reads marked, replay pages), so running it again is safe.
    Not thread-sensitive: hub connections are independent, and serialising
    every connect, ack and read of a process through one thread made 1,000
    concurrent connects queue behind each other's database connection setup.
    The connection is closed inside the call: Channels' own cleanup around a
    non-thread-sensitive call was seen to leave it open (asgiref 3.13 runs the
    call in a copied context whose connection the cleanup does not see).
    `executor`: the threads to run it in (default: the event loop's).
    """

    def run_then_close_connection(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            try:
                return function(*args, **kwargs)
            except TRANSIENT_DATABASE_ERRORS as error:
                logger.warning("hub: %s failed on the database (%s); once more", function.__name__, error)
                connection.close()  # back to the pool, which drops it if it is broken
                return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run_then_close_connection, thread_sensitive=False, executor=executor)
