"""`python -m bench.soak`: prepare the soak database, start the stack, run clients, publisher and chaos, judge.

In order: a private Redis and the fake FCM server; the soak database created
if missing, migrated, emptied and filled with the soak's users; the Procfile's
processes; devices registered through the API; every client connected;
then publishing for `--seconds` while the chaos steps strike on schedule;
then the flaky clients settle, the driver waits until no delivery is open (up
to the settle bound), collects what the clients saw, stops everything, and
writes the table. Exit status: 0 if the run kept the rule, 1 if not, 2 if the
soak itself could not run.
"""

import asyncio
import logging
import os
import platform
import random
import secrets
import sys
import time
from datetime import UTC, datetime

from bench.clients import raise_fd_limit
from bench.run import git_revision
from bench.soak import chaos, database, judge, report
from bench.soak.options import THRESHOLDS, Options, parse_options
from bench.soak.population import Population
from bench.soak.publisher import HttpTally, Publisher, Targets, register_devices
from bench.soak.result import SoakResult
from bench.soak.stack import Stack, driver_environment
from bench.soak.swarm import ClientRecords, SoakSwarm

STATUS_EVERY = 5.0  # seconds between two progress lines of the same stage
# After the last client is in: a SignalR client counts as connected when its handshake is answered, and the hub
# registers its presence just after; publishing at once could find a connected user offline.
CALM_BEFORE_PUBLISHING = 2.0


class Progress:
    """Status lines on stderr, each stage at most every few seconds."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._last: dict[str, float] = {}

    def __call__(self, status: str) -> None:
        now = time.monotonic()
        stage = status.split(":")[0]
        if now - self._last.get(stage, -STATUS_EVERY) < STATUS_EVERY and not stage.startswith("chaos"):
            return
        self._last[stage] = now
        sys.stderr.write(f"[{now - self.started:5.0f}s] {status}\n")
        sys.stderr.flush()


def prepare_database(options: Options, *, rng: random.Random, run_id: str, progress: Progress) -> Population:
    """Create, migrate and empty the soak database; create the soak's users, departments and publisher."""
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the progress lines
    from django.db import connection

    from bench import fixtures
    from bench.soak.population import create_population

    progress("preparing the soak database")
    fixtures.ensure_database(options.database_url)
    fixtures.migrate_and_flush()
    progress(f"creating {options.clients:,} users")
    population = create_population(
        clients=options.clients, mix=options.mix, department_size=options.department_size, run_id=run_id, rng=rng
    )
    connection.close()  # the driver holds no connection during the run (chaos step `pg` would break it)
    return population


class Soak:
    def __init__(
        self, options: Options, stack: Stack, population: Population, *, rng: random.Random, run_id: str, progress
    ) -> None:
        self.options = options
        self.stack = stack
        self.population = population
        self.rng = rng
        self.run_id = run_id
        self.progress = progress
        self.tally = HttpTally()
        self.steps = [chaos.StepRecord(name, at) for name, at in zip(options.steps, options.step_times, strict=True)]
        self.schedule = chaos.Schedule(publish_seconds=options.seconds, final=not self.steps)

    async def run(self) -> SoakResult:
        options, stack, progress = self.options, self.stack, self.progress
        await asyncio.to_thread(stack.start_processes, progress)
        progress("registering devices through POST /api/devices/")
        devices = await register_devices(base_url=stack.base_url, population=self.population, tally=self.tally)
        swarm = SoakSwarm(options.client_processes)
        targets = Targets(
            self.population, department_share=options.department_share, probe_share=options.probe_share, rng=self.rng
        )
        publisher = Publisher(
            base_url=stack.base_url,
            population=self.population,
            targets=targets,
            rate=options.rate,
            run_id=self.run_id,
            tally=self.tally,
        )
        await swarm.start()
        try:
            await swarm.start_clients(self.population, options, ws_base=stack.ws_base)
            missing = await swarm.wait_connected(timeout=max(60.0, options.clients / 10), progress=progress)
            if missing:
                raise RuntimeError(f"clients still not connected: {dict(missing)}\n{stack.web.log_tail()}")
            await asyncio.sleep(CALM_BEFORE_PUBLISHING)
            publish_started, started = time.time(), time.monotonic()
            watcher = asyncio.create_task(self._report_publishing(publisher, started))
            strikes = asyncio.create_task(
                chaos.run_steps(
                    stack,
                    self.steps,
                    schedule=self.schedule,
                    started=started,
                    observe=options.observe_after_step,
                    progress=progress,
                )
            )
            await publisher.run(schedule=self.schedule, started=started)
            await strikes
            watcher.cancel()
            progress(f"publishing done: {len(publisher.publishes):,} sent; settling")
            await swarm.settle()
            settled, waited = await database.wait_until_settled(
                options.database_url, bound=options.timings.settle_bound, progress=progress
            )
            await asyncio.sleep(2)  # the last frames and acks in flight
            records = await swarm.collect()
        finally:
            await swarm.stop()
            await publisher.close()
        progress("judging")
        return await asyncio.to_thread(
            self.judge,
            publisher=publisher,
            records=records,
            publish_started=publish_started,
            settled=settled,
            waited=waited,
            devices=devices,
        )

    async def _report_publishing(self, publisher: Publisher, started: float) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            answered = sum(1 for publish in publisher.publishes if publish.status is not None or publish.gave_up)
            self.progress(
                f"publishing: {time.monotonic() - started:.0f}/{self.schedule.publish_seconds:.0f} s, "
                f"{len(publisher.publishes):,} sent, {answered:,} answered"
            )

    def judge(
        self,
        *,
        publisher: Publisher,
        records: ClientRecords,
        publish_started: float,
        settled: bool,
        waited: float,
        devices: int,
    ) -> SoakResult:
        """Read the database and the fake FCM server, and judge everything recorded (bench/soak/judge.py)."""
        recorded = judge.Recorded(
            options=self.options,
            population=self.population,
            steps=self.steps,
            publisher=publisher,
            tally=self.tally,
            records=records,
            rows=database.delivery_rows(self.options.database_url),
            notifications_per_seq=database.notifications_per_seq(self.options.database_url),
            fcm_requests=list(self.stack.fcm.requests),
            publish_started=publish_started,
            publish_seconds=self.schedule.publish_seconds,
            settled=settled,
            settle_seconds=waited,
            devices=devices,
            meta=self.meta(publish_started),
        )
        return judge.judge(recorded)

    def meta(self, publish_started: float) -> dict[str, str]:
        options = self.options
        kinds = {kind: len(self.population.keys_of(kind)) for kind in options.mix if options.mix[kind]}
        return {
            "date": datetime.fromtimestamp(publish_started, UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_revision(),
            "machine": f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
            f"load average (1 min) at the end {os.getloadavg()[0]:.2f}",
            "clients": f"{options.clients:,} ({', '.join(f'{kind} {count:,}' for kind, count in kinds.items())})",
            "departments": f"{len(self.population.departments)} of {options.department_size[0]}–"
            f"{options.department_size[1]} members; {options.department_share:.1%} of publishes",
            "publishing": f"{options.rate:g}/s for {self.schedule.publish_seconds:.0f} s"
            + (
                f" (planned {options.seconds:g} s; the steps ran late)"
                if self.schedule.publish_seconds > options.seconds
                else ""
            )
            + f"; {options.probe_share:.0%} aimed at always-connected native clients (latency probes)",
            "chaos steps": ", ".join(f"{step.name} at {step.planned_at:g} s" for step in self.steps) or "none",
            "delivery settings": " ".join(f"{name}={value}" for name, value in options.timings.environment().items()),
            "settle bound": options.timings.describe(),
            "recovery measure": f"p99 over a sliding {options.window:g} s window, back at the threshold "
            f"({THRESHOLDS[options.threshold]}, plus {options.tolerance_ms:g} ms) "
            f"and staying there {options.hold:g} s; "
            f"limit {options.recovery_limit:g} s",
            "Procfile": options.procfile.name,
            "command": "python -m bench.soak " + " ".join(sys.argv[1:]),
        }


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Progress()
    raise_fd_limit()
    rng = random.Random(options.seed)
    run_id = secrets.token_hex(4)
    stack = Stack(options)
    try:
        stack.start_services()
        os.environ.update(driver_environment(options, secret_key=stack.secret_key, redis_url=stack.redis.url))
        population = prepare_database(options, rng=rng, run_id=run_id, progress=progress)
        soak = Soak(options, stack, population, rng=rng, run_id=run_id, progress=progress)
        result = asyncio.run(soak.run())
    except Exception as error:
        sys.stderr.write(f"make soak could not run: {type(error).__name__}: {error}\n")
        return 2
    finally:
        progress("stopping the stack")
        stack.stop()
    report.write(result, options.output)
    if options.result_json is not None:
        options.result_json.write_text(result.to_json())
    print(report.table(result))
    print(f"\nWritten: {options.output} (process logs in {options.logs})")
    return 1 if result.violations() else 0
