"""`python -m bench`: prepare the bench database, then run every server, round after round, and report.

Per round the servers run one after the other in a rotating order (so drift on
a shared machine spreads over all of them). Each server run starts the server
from scratch on an empty Redis database and empty notification tables,
connects the clients (reading RSS on the way), runs the scenarios on the same
connections, and stops the server.
"""

import asyncio
import contextlib
import functools
import logging
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime

import redis
from asgiref.sync import sync_to_async

from bench import profile, report, scenarios
from bench.clients import raise_fd_limit
from bench.options import Options, parse_options
from bench.publishers import ApiPublisher, BarePublisher, ServicePublisher, api_is_available
from bench.stack import REPO, Server
from bench.swarm import ClientPool
from bench.wire import BARE_CHANNEL_PREFIX

HUB_PATH = "/ws/notifications/"
HUB_ONLY_SCENARIOS = (
    "acks",
    "batch",
    "reconnect",
)  # the bare server persists no acks, has no batch publish, is not restarted


class Progress:
    """One status line on stderr: rewritten in place on a terminal, one line per stage otherwise."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.context = ""
        self.tty = sys.stderr.isatty()
        self._last_render = 0.0
        self._last_stage = ""

    def __call__(self, status: str) -> None:
        now = time.monotonic()
        line = f"[{now - self.started:5.0f}s] {self.context}{status}"
        if self.tty:
            if now - self._last_render < 0.1:
                return
            self._last_render = now
            width = shutil.get_terminal_size((120, 20)).columns - 1
            sys.stderr.write("\r" + line[:width].ljust(width))
        else:
            stage = self.context + status.split(":")[0]
            if stage == self._last_stage:
                return
            self._last_stage = stage
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self, message: str) -> None:
        if self.tty:
            sys.stderr.write("\r" + " " * (shutil.get_terminal_size((120, 20)).columns - 1) + "\r")
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def bench_environment(options: Options) -> dict[str, str]:
    """The environment of the driver and the hub servers: the bench's own database and Redis, no .env file."""
    environment = dict(os.environ)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
            "ENV_FILE": str(REPO / "bench" / "no-env-file"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "false",
            "DATABASE_URL": options.database_url,
            "REDIS_URL": options.redis_url,
            # Longer than any run: the hub closes sockets when their token expires.
            "JWT_ACCESS_TOKEN_LIFETIME": "86400",
            # The API's throttles (10 publishes/s by default) would measure the throttle, not the hub.
            "API_RATE_PUBLISH": "1000000/second",
            "API_RATE_USER": "1000000/second",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return environment


def git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
        return revision + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Bench:
    """Runs the servers and scenarios and collects the results.

    The bare server starts first and stays up, its clients connected. Then
    each hub server in turn starts, gets its clients (memory is read on the
    way), and runs `--rounds` rounds, each paired with a bare round on the
    same client processes, in alternating order; then it stops. Hub servers
    run one at a time because they share the bench's Redis database.
    """

    def __init__(self, options: Options, environment: dict, population, progress: Progress) -> None:
        self.options = options
        self.environment = environment
        self.population = population
        self.progress = progress
        self.results = report.Results(servers=options.servers)
        self.pool = ClientPool(options.client_processes)
        self.publish_path: str | None = None
        self.profiles: list[str] = []
        self.redis = redis.Redis.from_url(options.redis_url)
        # Pub/sub channels are global to the Redis server: a per-run prefix keeps other runs out.
        self.bare_prefix = f"{BARE_CHANNEL_PREFIX}{secrets.token_hex(4)}."
        self.bare_rounds = 0

    @property
    def warm_index(self) -> int:
        return self.options.users  # one user beyond the scenario users, in no department

    async def run(self) -> None:
        from bench import fixtures

        options = self.options
        await self.pool.start()
        bare = None
        try:
            if "bare" in options.servers:
                self.progress.context = "bare · "
                bare, bare_ramp = await self.start_target("bare", key_offset=10 * (options.users + 1))
            hubs = [kind for kind in options.servers if kind != "bare"]
            for hub_kind in hubs or [None]:
                hub = None
                if hub_kind is not None:
                    self.progress.context = f"{hub_kind} · "
                    self.redis.flushdb()  # the bench's Redis database: no groups or presence from the last hub
                    await sync_to_async(fixtures.reset_notifications, thread_sensitive=True)()
                    hub, hub_ramp = await self.start_target(hub_kind, key_offset=0)
                    if bare is not None:
                        self.results.pair(hub_kind, hub_ramp, bare_ramp)
                try:
                    await self.run_rounds(hub, bare)
                finally:
                    if hub is not None:
                        await self.stop_target(hub)
        finally:
            if bare is not None:
                await self.stop_target(bare)
            await self.pool.stop()

    async def run_rounds(self, hub: scenarios.ServerRun | None, bare: scenarios.ServerRun | None) -> None:
        from bench import fixtures

        for round_number in range(1, self.options.rounds + 1):
            targets = [target for target in (hub, bare) if target is not None]
            if round_number % 2 == 0:
                targets.reverse()  # alternate who goes first
            outcomes = {}
            for target in targets:
                if target is bare:
                    self.bare_rounds += 1
                    target.round = self.bare_rounds
                else:
                    target.round = round_number
                    await sync_to_async(fixtures.reset_notifications, thread_sensitive=True)()
                self.progress.context = (
                    f"{(hub or bare).server.kind} round {round_number}/{self.options.rounds} · {target.server.kind} · "
                )
                await scenarios.settle(target)
                outcomes[target.server.kind] = outcome = await self.run_scenarios(target)
                self.results.add(target.server.kind, f"round {target.round}", outcome)
            if hub is not None and bare is not None:
                self.results.pair(hub.server.kind, outcomes[hub.server.kind], outcomes["bare"])

    async def start_target(self, kind: str, *, key_offset: int) -> tuple[scenarios.ServerRun, scenarios.Outcome]:
        """Start a server, warm it up and connect its clients; returns it with the memory figures."""
        options = self.options
        self.progress("starting")
        server = Server(
            kind=kind,
            env=self.environment,
            log_dir=options.output / "logs",
            redis_url=options.redis_url,
            channel_prefix=self.bare_prefix,
        )
        await asyncio.to_thread(server.start)
        run = scenarios.ServerRun(
            server=server,
            pool=self.pool,
            publisher=None,
            options=options,
            status=self.progress,
            connect_url=self.connect_url(server),
            key_offset=key_offset,
        )
        try:
            run.publisher = await self.make_publisher(server)
            await self.warm_up(run)
            async with self.profiled(run, "connect"):
                ramp = await scenarios.ramp_up(run, measure_memory="memory" in options.scenarios)
        except BaseException:
            await self.stop_target(run)
            raise
        self.results.add(kind, "connect", ramp)
        return run, ramp

    async def stop_target(self, run: scenarios.ServerRun) -> None:
        self.progress("stopping")
        try:
            await scenarios.close_clients(run, list(run.connected))
            if run.publisher is not None:
                await run.publisher.close()
        finally:
            await asyncio.to_thread(run.server.stop)

    async def run_scenarios(self, run: scenarios.ServerRun) -> scenarios.Outcome:
        from bench import fixtures

        outcome = scenarios.Outcome()
        for name, scenario in (
            ("latency", scenarios.latency),
            ("fanout", scenarios.fanout),
            ("throughput", scenarios.throughput),
            ("acks", functools.partial(scenarios.acks, acknowledged_count=fixtures.acknowledged_count)),
            ("batch", scenarios.batch),
            # Last: it restarts the web process (the next round goes on with the restarted one).
            ("reconnect", functools.partial(scenarios.reconnect, parts=self.storm_parts(run))),
        ):
            if name not in self.options.scenarios or (name in HUB_ONLY_SCENARIOS and not run.server.is_hub):
                continue
            async with self.profiled(run, name):
                outcome.merge(await scenario(run))
        return outcome

    def storm_parts(self, run: scenarios.ServerRun) -> scenarios.StormParts:
        from bench import fixtures

        population = self.population

        async def reopen_publisher():
            await run.publisher.close()
            return await self.make_publisher(run.server)

        return scenarios.StormParts(
            reset_notifications=sync_to_async(fixtures.reset_notifications, thread_sensitive=True),
            offline_publisher=ServicePublisher(
                user_ids=population.user_ids,
                department_id=population.department_id,
                publisher_id=population.publisher_id,
            ),
            reopen_publisher=reopen_publisher,
        )

    def connect_url(self, server: Server):
        population = self.population
        base = f"ws://127.0.0.1:{server.port}"
        if server.is_hub:

            def hub_url(index: int) -> tuple[str, dict]:
                return base + HUB_PATH, {"Authorization": f"Bearer {population.tokens[index]}"}

            return hub_url

        def bare_url(index: int) -> tuple[str, dict]:
            departments = f"&departments={population.department_id}" if index < population.department_size else ""
            return f"{base}/?user={population.user_ids[index]}{departments}", {}

        return bare_url

    async def make_publisher(self, server: Server):
        population = self.population
        if not server.is_hub:
            return BarePublisher(
                redis_url=self.options.redis_url,
                user_ids=population.user_ids,
                department_id=population.department_id,
                prefix=self.bare_prefix,
            )
        base_url = f"http://127.0.0.1:{server.port}"
        if self.publish_path is None:
            self.publish_path = "api" if await api_is_available(base_url, population.publisher_token) else "service"
        if self.publish_path == "api":
            return ApiPublisher(
                base_url=base_url,
                token=population.publisher_token,
                user_ids=population.user_ids,
                department_id=population.department_id,
            )
        return ServicePublisher(
            user_ids=population.user_ids, department_id=population.department_id, publisher_id=population.publisher_id
        )

    async def warm_up(self, run: scenarios.ServerRun) -> None:
        """One connection and one notification, so imports and first-request work are not measured."""
        self.progress("warming up")
        await scenarios.open_clients(run, range(self.warm_index, self.warm_index + 1))
        phase = run.phase("warm")
        await self.pool.phase(phase)
        await run.publisher.to_user(index=self.warm_index, event="bench.warm", phase=phase, seq=0)
        if not await self.pool.wait_received(1, timeout=scenarios.RECEIVE_TIMEOUT):
            raise RuntimeError(f"{run.server.kind}: the warm-up notification never arrived\n{run.server.log_tail()}")

    @contextlib.asynccontextmanager
    async def profiled(self, run: scenarios.ServerRun, phase: str):
        """py-spy a hub server through one phase (its connect and its first round), if `--profile` names it."""
        if phase not in self.options.profile or not run.server.is_hub or run.round > 1:
            yield
            return
        path = self.options.output / f"profile-{run.server.kind}-{phase}.txt"
        spy = profile.start(run.server.pid, output=path)
        try:
            yield
        finally:
            error = await asyncio.to_thread(profile.finish, spy)
            title = f"{run.server.kind}, {phase}"
            if error:
                self.profiles.append(f"### {title}\n\npy-spy failed: {error}")
            elif path.exists():
                table = profile.hot_spots_markdown(
                    title, profile.hot_spots(path), profile.project_hot_spots(path, root=REPO)
                )
                self.profiles.append(f"{table}\n\nCollapsed stacks: `{path.name}`")


def prepare(options: Options, progress: Progress):
    """Create and migrate the bench database, empty it, and create the bench's users."""
    import django

    django.setup()
    for chatty in ("httpx", "matplotlib"):  # their INFO lines would break the progress line
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from bench import fixtures

    progress("preparing the bench database")
    fixtures.ensure_database(options.database_url)
    fixtures.migrate_and_flush()
    progress(f"creating {options.users + 1:,} users and a {options.department_size:,}-member department")
    return fixtures.create_population(users=options.users + 1, department_size=options.department_size)


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    environment = bench_environment(options)
    os.environ.update(environment)
    raise_fd_limit()
    progress = Progress()
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    population = prepare(options, progress)
    bench = Bench(options, environment, population, progress)
    try:
        asyncio.run(bench.run())
    except Exception as error:
        progress.finish(f"make bench failed: {error}")
        raise SystemExit(1) from None
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration": f"{time.monotonic() - progress.started:.0f} s",
        "commit": git_revision(),
        "machine": f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}",
        "load average (1 min) before / after": f"{load_before[0]:.2f} / {os.getloadavg()[0]:.2f}",
        "rounds": options.rounds,
        "servers": ", ".join(options.servers),
        "hub publish path": {
            "api": "POST /api/notifications/ (REST API)",
            "service": "in-process notification_publish (no REST API yet)",
        }.get(bench.publish_path, "–"),
        "sizes": (
            f"{options.clients:,} clients; latency {options.rate:g}/s for {options.latency_seconds:g} s; "
            f"fan-out {options.fanout_sends} sends to {options.department_size:,}; throughput "
            f"{options.throughput_seconds:g} s with {options.throughput_window} sends in flight; memory at "
            f"{', '.join(f'{point:,}' for point in options.memory_points)} connections; "
            f"acks {options.ack_sends} × {options.department_size:,}; batch {options.batch_seconds:g} s of single "
            f"publishes, then {options.batch_seconds:g} s of batches of {options.batch_size}, "
            f"{options.publish_concurrency} requests at a time; reconnect storm {options.storm_clients:,} "
            f"clients, {options.storm_missed} notifications while down, {options.storm_rate:g}/s live; "
            f"{options.client_processes} client processes"
        ),
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    text_extra = ("\n\n## Profiles (py-spy)\n\n" + "\n\n".join(bench.profiles)) if bench.profiles else ""
    markdown_path, plot_path = report.write(bench.results, options, meta)
    if text_extra:
        with markdown_path.open("a") as markdown_file:
            markdown_file.write(text_extra + "\n")
    progress.finish(f"done in {time.monotonic() - progress.started:.0f} s")
    print(report.results_table(bench.results, options))
    print()
    print(report.targets_table(bench.results, options))
    print(f"\nWritten: {markdown_path}" + (f" and {plot_path}" if plot_path else " (no plot: matplotlib missing)"))
