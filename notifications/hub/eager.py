"""Run a coroutine at once, on the caller's stack, and give it a task only if it has to wait.

Python 3.12's eager tasks (`asyncio.eager_task_factory`) do this for every task; the project runs on 3.11,
and needs it in one place: the router hands each layer message to every local connection in its group
(`HubConsumer.deliver`), and a connection's ASGI send nearly always completes without waiting (the frame
goes into the socket's buffer). A task per frame would cost every member of a 1,000-member fan-out a wake-up
through the event loop for nothing; started here, the write is a plain call, and only a send that must wait
(uvicorn pauses sends while a client's buffers are full) goes on in a task of its own.
"""

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["start_eagerly"]


def start_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coroutine` until it finishes or first waits: None if it finished, else the task that runs the rest.

    What it raises before it first waits is raised here; the task behaves as if it had run the coroutine from
    the start (cancelling it cancels what the coroutine waits for; what that wait raises is raised in the
    coroutine).
    """
    try:
        waiting_for = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.create_task(_resume(coroutine, waiting_for))


async def _resume(coroutine: Coroutine[Any, Any, None], waiting_for: object) -> None:
    """Go on with a coroutine that waits on `waiting_for` (what it yielded), as the task that ran it would."""
    while True:
        try:
            await _Yield(waiting_for)
        except BaseException as error:  # the wait failed, or this task was cancelled: raised in the coroutine
            try:
                waiting_for = coroutine.throw(error)
            except StopIteration:
                return
        else:
            try:
                waiting_for = coroutine.send(None)
            except StopIteration:
                return


class _Yield:
    """Awaitable that hands the running task what the coroutine yielded (a future to wait on, or None: a pass)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __await__(self) -> Generator[object, None, None]:
        yield self.value
