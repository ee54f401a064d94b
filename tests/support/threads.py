"""Run test code in another thread with its own database connection, as another process would; wait until such
connections are all blocked on locks (to release them together)."""

import threading
import time
from collections.abc import Callable

from django.db import connections


class Worker(threading.Thread):
    """A thread that keeps its function's result or exception and closes its DB connections at the end."""

    def __init__(self, target: Callable, *args, **kwargs) -> None:
        super().__init__(daemon=True)
        self._call = (target, args, kwargs)
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        target, args, kwargs = self._call
        try:
            self.result = target(*args, **kwargs)
        except BaseException as error:
            self.error = error
        finally:
            connections.close_all()

    def outcome(self, timeout: float = 30):
        self.join(timeout)
        assert not self.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


BLOCKED_BACKENDS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


def wait_for_blocked_backends(cursor, count: int, timeout: float = 10.0) -> None:
    """Wait until `count` other connections to the test database wait for a lock (e.g. one `cursor` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # statistics views are snapshotted per transaction
        cursor.execute(BLOCKED_BACKENDS)
        if cursor.fetchone()[0] >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} connections never blocked on a lock")
