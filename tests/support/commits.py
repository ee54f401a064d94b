"""A COMMIT or statement whose connection dies: for the tests of core.database.atomic_with_verified_commit and
its callers, and of the statements that run again on a new connection."""

import contextlib
from collections.abc import Iterator
from unittest import mock

import psycopg
from django.db import OperationalError, connection, connections

from tests.support.servers import database_url


@contextlib.contextmanager
def first_commit_lost(*, landed: bool) -> Iterator[list[int]]:
    """The connection dies during the first COMMIT in the block: after the server committed (`landed`), or before
    it got there. Later commits are real. Yields the list of commits tried (one entry each)."""
    real_commit = connections["default"].commit
    commits: list[int] = []

    def commit() -> None:
        commits.append(1)
        if len(commits) > 1 or landed:
            real_commit()
        if len(commits) == 1:
            raise OperationalError("server closed the connection unexpectedly")

    with mock.patch.object(connections["default"], "commit", side_effect=commit):
        yield commits


def kill_this_connection() -> None:
    """Terminate this thread's backend from another connection, as a PostgreSQL restart would: its next statement
    fails with a lost connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
