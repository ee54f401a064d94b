"""Database errors that a moment later may not happen again: the connection was lost, or PostgreSQL chose
this transaction to abort (a deadlock, a serialization failure).

psycopg reports all of them as OperationalError (Django re-raises them as its own), and an operation on a
connection that broke earlier as InterfaceError. Callers that may run again (idempotent hub commands, an HTTP
request that committed nothing) retry once; others answer 503 with Retry-After.
"""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, transaction

logger = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)


def atomic_with_verified_commit(
    work: Callable[[], T], *, landed: Callable[[T], bool], after_lost_commit: Callable[[T], None]
) -> T:
    """`work()` in a transaction whose COMMIT, if the connection dies during it, is checked rather than guessed.

    A connection lost while COMMIT is on its way leaves the outcome unknown: the server may have committed
    and died before answering. Then `landed(result)` asks a new connection. If it landed, the result stands,
    but the transaction's on-commit callbacks never ran (Django drops them with the connection):
    `after_lost_commit(result)` must let something else catch up (e.g. hand the rows to the retry sweep). If
    it did not land, `work()` runs once more. Must be the outermost transaction.
    """
    attempt_result: list[T] = []
    for attempt in range(2):
        attempt_result.clear()
        try:
            with transaction.atomic():
                attempt_result.append(work())
            return attempt_result[0]
        except TRANSIENT_DATABASE_ERRORS:
            if not attempt_result:  # failed before COMMIT: nothing landed (the HTTP layer may run it again)
                raise
        result = attempt_result[0]
        logger.warning("database: the connection was lost during COMMIT; checking whether it landed")
        if landed(result):
            after_lost_commit(result)
            return result
        if attempt:
            raise OperationalError("the transaction was lost twice during COMMIT")
    raise AssertionError("unreachable")
