"""Run test code in another thread with its own database connection, as another process would."""

import threading
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
