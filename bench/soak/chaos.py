"""The chaos steps, each what an operator or a crash does to a running deployment.

- `redis`: kill the private redis-server and start a new, empty one on the same port
  (channel layer, presence, Celery broker and cache all lose everything);
- `pg`: terminate every PostgreSQL backend of the soak database but the one
  asking (`pg_terminate_backend`): every pooled and worker connection breaks;
- `sigterm`: restart the web process gracefully (SIGTERM, wait for the exit,
  start again on the same port): a deploy;
- `kill9`: `kill -9` the web process and start it again: a crash;
- `worker`: `kill -9` the Celery worker (with its pool) and start it again;
- `beat`: restart Celery beat (SIGTERM, start again).

Each step records when it struck (`struck_at`, wall clock: the moment the
signal was sent or the backends terminated) and when the stack was whole again.
"""

import asyncio
import time
from dataclasses import dataclass

import psycopg

from bench.soak.stack import Stack

# How long a process may take to exit after SIGTERM before it is killed (a process manager's stop timeout).
SIGTERM_PATIENCE = 30.0

DESCRIPTIONS = {
    "redis": "restart Redis (kill, start empty on the same port)",
    "pg": "terminate every PostgreSQL backend of the soak database",
    "sigterm": "restart web with SIGTERM",
    "kill9": "kill -9 web, start it again",
    "worker": "kill -9 the Celery worker, start it again",
    "beat": "restart Celery beat",
}


@dataclass
class StepRecord:
    name: str
    planned_at: float  # seconds after publishing started
    struck_at: float = 0.0  # time.time()
    whole_at: float = 0.0  # time.time(): the process (or server) is back
    detail: str = ""

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]


def terminate_database_backends(database_url: str) -> int:
    """pg_terminate_backend() every other connection to the soak database; returns how many."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return row[0]


def _restart_redis(stack: Stack, record: StepRecord) -> None:
    record.struck_at = time.time()
    stack.redis.restart()  # SIGKILL, then a new redis-server on the same port, waited for until it answers
    record.whole_at = time.time()
    record.detail = f"Redis back after {record.whole_at - record.struck_at:.1f} s"


def _terminate_backends(stack: Stack, record: StepRecord) -> None:
    record.struck_at = time.time()
    terminated = terminate_database_backends(stack.options.database_url)
    record.whole_at = time.time()
    record.detail = f"{terminated} backends terminated"


def _restart_gracefully(stack: Stack, record: StepRecord, name: str) -> None:
    process = stack.process_line(name)
    record.struck_at = time.time()
    stopping, killed = process.terminate(timeout=SIGTERM_PATIENCE)
    starting = process.start()
    record.whole_at = time.time()
    stopped = (
        f"**ignored SIGTERM for {stopping:.0f} s, killed**" if killed else f"exited {stopping:.1f} s after SIGTERM"
    )
    record.detail = f"{name} {stopped}, ready {starting:.1f} s after start"


def _kill_and_start(stack: Stack, record: StepRecord, name: str) -> None:
    process = stack.process_line(name)
    record.struck_at = time.time()
    process.kill()
    starting = process.start()
    record.whole_at = time.time()
    record.detail = f"{name} ready {starting:.1f} s after start"


def strike(stack: Stack, record: StepRecord) -> None:
    """Run one step (blocking: call it in a thread)."""
    match record.name:
        case "redis":
            _restart_redis(stack, record)
        case "pg":
            _terminate_backends(stack, record)
        case "sigterm":
            _restart_gracefully(stack, record, "web")
        case "kill9":
            _kill_and_start(stack, record, "web")
        case "worker":
            _kill_and_start(stack, record, "worker")
        case "beat":
            _restart_gracefully(stack, record, "beat")
        case _:
            raise ValueError(f"unknown chaos step {record.name!r}")


@dataclass
class Schedule:
    """How long publishing lasts: the planned time, longer if the chaos steps ran late (see `run_steps`)."""

    publish_seconds: float
    final: bool = False  # every step has struck: `publish_seconds` will not change any more


async def run_steps(
    stack: Stack, records: list[StepRecord], *, schedule: Schedule, started: float, observe: float, progress
) -> None:
    """Strike each step at its planned time (seconds after `started`, a time.monotonic()), or later.

    Every step is followed by at least `observe` seconds of the whole stack (all processes back) before the
    next one strikes and before publishing ends: if one overruns (a process that ignores SIGTERM is killed
    only after SIGTERM_PATIENCE), the rest of the schedule moves and publishing goes on longer, so no step
    is judged on a second of observation.
    """
    earliest = 0.0
    try:
        for record in records:
            strike_at = max(record.planned_at, earliest)
            delay = started + strike_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            progress(f"chaos: {record.description}")
            await asyncio.to_thread(strike, stack, record)
            progress(f"chaos: {record.name} done ({record.detail})")
            earliest = time.monotonic() - started + observe
        schedule.publish_seconds = max(schedule.publish_seconds, earliest)
    finally:
        schedule.final = True
