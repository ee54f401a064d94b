"""start_eagerly: a coroutine runs on the caller's stack, and only what it waits for runs later, in a task."""

import asyncio

import pytest

from notifications.hub.eager import start_eagerly


def test_a_coroutine_that_never_waits_runs_to_its_end_before_the_call_returns():
    steps = []

    async def write() -> None:
        steps.append("written")

    async def scenario() -> asyncio.Task | None:
        rest = start_eagerly(write())
        steps.append("returned")
        return rest

    assert asyncio.run(scenario()) is None
    assert steps == ["written", "returned"]


def test_a_coroutine_that_waits_runs_up_to_the_wait_then_the_task_finishes_it():
    steps = []

    async def write(ready: asyncio.Future) -> None:
        steps.append("before")
        steps.append(await ready)
        await asyncio.sleep(0)  # a bare pass to the loop, as asyncio.sleep(0) yields
        steps.append("after")

    async def scenario() -> None:
        ready = asyncio.get_running_loop().create_future()
        rest = start_eagerly(write(ready))
        assert rest is not None
        assert steps == ["before"]
        ready.set_result("result")
        await rest

    asyncio.run(scenario())
    assert steps == ["before", "result", "after"]


def test_what_the_wait_raises_is_raised_in_the_coroutine():
    caught = []

    async def write(ready: asyncio.Future) -> None:
        try:
            await ready
        except ConnectionResetError as error:
            caught.append(str(error))

    async def scenario() -> None:
        ready = asyncio.get_running_loop().create_future()
        rest = start_eagerly(write(ready))
        assert rest is not None
        ready.set_exception(ConnectionResetError("gone"))
        await rest

    asyncio.run(scenario())
    assert caught == ["gone"]


def test_cancelling_the_task_cancels_the_wait_and_the_coroutine():
    cleaned_up = []

    async def write(ready: asyncio.Future) -> None:
        try:
            await ready
        finally:
            cleaned_up.append(True)

    async def scenario() -> asyncio.Future:
        ready = asyncio.get_running_loop().create_future()
        rest = start_eagerly(write(ready))
        assert rest is not None
        await asyncio.sleep(0)  # the task is waiting on `ready` now
        rest.cancel()
        with pytest.raises(asyncio.CancelledError):
            await rest
        return ready

    ready = asyncio.run(scenario())
    assert ready.cancelled()
    assert cleaned_up == [True]


def test_an_error_before_the_first_wait_is_raised_to_the_caller():
    async def write() -> None:
        raise ValueError("bad frame")

    async def scenario() -> None:
        with pytest.raises(ValueError, match="bad frame"):
            start_eagerly(write())

    asyncio.run(scenario())
