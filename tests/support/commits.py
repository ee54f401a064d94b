"""A COMMIT whose connection dies: for the tests of core.database.atomic_with_verified_commit and its callers."""

import contextlib
from collections.abc import Iterator
from unittest import mock

from django.db import OperationalError, connections


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
