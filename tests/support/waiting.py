"""Waiting for another process to catch up, without turning speed into an assertion."""

import time
from collections.abc import Callable


def eventually(predicate: Callable[[], bool], timeout: float = 10, interval: float = 0.05) -> bool:
    """True as soon as `predicate()` is; False if it never was within `timeout` (generous: not a speed test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
