"""Acknowledgements from every connection of an event loop, written to the database in batches."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from notifications import services
from notifications.hub import load
from notifications.hub.database import in_database_thread
from notifications.hub.per_loop import one_per_event_loop

# Most acks one database write persists (see AckBatcher).
ACK_BATCH_SIZE = 500


class AckBatcher:
    """Coalesces the acks of every connection on one event loop into few database writes.

    Group commit: at most one write is in flight per loop. An ack that finds
    none starts one at once (no added latency when idle); acks that arrive
    while a write runs wait for the next one, which takes up to
    `ACK_BATCH_SIZE` of them in one `services.deliveries_acknowledge_many`
    call. Batches so grow with the load instead of after a fixed delay. Each
    waiting ack gets its own outcome; if a write fails, every ack in it fails
    with that error (the consumer answers `internal_error`), never hangs.
    """

    def __init__(self) -> None:
        # (user id, notification id, its outcome, when it arrived: time.monotonic()), oldest first
        self._waiting: list[tuple[int, object, asyncio.Future[services.AckOutcome], float]] = []
        self._writer: asyncio.Task[None] | None = None
        self._writing_since: float | None = None  # when the oldest ack of the write in flight arrived
        load.watch_ack_backlog(self)
        # A thread of its own: acks never queue behind connects and replays for a worker thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-acks")

    def oldest_wait_seconds(self) -> float:
        """How long the oldest ack not yet written has waited (0 when none waits): see `load`."""
        oldest = self._writing_since or (self._waiting[0][3] if self._waiting else None)
        return 0.0 if oldest is None else time.monotonic() - oldest

    async def acknowledge(self, user_id: int, notification_id: object) -> services.AckOutcome:
        outcome: asyncio.Future[services.AckOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((user_id, notification_id, outcome, time.monotonic()))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_while_waiting())
        return await outcome

    async def _write_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:ACK_BATCH_SIZE]
                del self._waiting[:ACK_BATCH_SIZE]
                self._writing_since = batch[0][3]
                await self._write(batch)
                self._writing_since = None
        finally:
            self._writing_since = None
            self._writer = None
            for _, _, outcome, _ in self._waiting:  # only when cancelled (server shutdown): nobody waits forever
                outcome.cancel()
            self._waiting.clear()

    async def _write(self, batch: list[tuple[int, object, asyncio.Future[services.AckOutcome], float]]) -> None:
        try:
            outcomes = await in_database_thread(services.deliveries_acknowledge_many, executor=self._thread)(
                [(user_id, notification_id) for user_id, notification_id, *_ in batch]
            )
        except BaseException as error:
            for _, _, outcome, _ in batch:
                if not outcome.done():
                    outcome.set_exception(error)
            if not isinstance(error, Exception):  # cancelled: stop writing
                raise
            return
        for (_, _, outcome, _), result in zip(batch, outcomes, strict=True):
            if not outcome.done():  # its connection may have gone meanwhile
                outcome.set_result(result)


# One batcher per event loop (the tests run several loops in one process; a server runs one).
ack_batcher = one_per_event_loop(AckBatcher)
