"""One object per event loop: how the hub keeps its per-process singletons (router, presence refresher, ack batcher).

A server runs one event loop, so each is the process's own. The tests run
several loops in one process, and asyncio objects (tasks, locks, futures,
redis.asyncio connections) belong to the loop that made them.
"""

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def one_per_event_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """A function that returns the running event loop's own `factory()`, made on first use."""
    instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def for_running_loop() -> T:
        loop = asyncio.get_running_loop()
        instance = instances.get(loop)
        if instance is None:
            instance = instances[loop] = factory()
        return instance

    return for_running_loop
