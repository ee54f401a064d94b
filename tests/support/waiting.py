"""Waiting for another process to catch up, without turning speed into an assertion."""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


def eventually(predicate: Callable[[], bool], timeout: float = 10, interval: float = 0.05) -> bool:
    """True as soon as `predicate()` is; False if it never was within `timeout` (generous: not a speed test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


async def eventually_async(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10, interval: float = 0.05
) -> bool:
    """`eventually` inside a running event loop, whose tasks go on meanwhile; `predicate()` may be awaitable."""

    async def holds() -> bool:
        result = predicate()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await holds():
            return True
        await asyncio.sleep(interval)
    return await holds()
