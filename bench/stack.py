"""The processes under test: NotifyHub under daphne or uvicorn, and the bare baseline server.

Each server binds 127.0.0.1 on a port the OS picked, writes its output to a log
file (shown when it fails to start), and is measured through /proc: CPU
seconds (user + system) and resident memory of the process and its
descendants (uvicorn's workers when WEB_CONCURRENCY is above 1).
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.wire import BARE_CHANNEL_PREFIX

REPO = Path(__file__).resolve().parent.parent
HUB_SERVERS = ("daphne", "uvicorn")
SERVERS = ("bare", *HUB_SERVERS)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_argv(kind: str, *, port: int, redis_url: str, channel_prefix: str = BARE_CHANNEL_PREFIX) -> list[str]:
    """The command line of each server kind; the hub's is the Procfile's web line (see `server_env`)."""
    if kind == "bare":
        argv = [sys.executable, "-m", "bench.bare_server", "--port", str(port), "--redis-url", redis_url]
        return [*argv, "--channel-prefix", channel_prefix]
    if kind in HUB_SERVERS:
        return [sys.executable, "-m", "notifyhub.web"]
    raise ValueError(f"unknown server {kind!r}; choose from {', '.join(SERVERS)}")


def server_env(kind: str, environment: dict | None, *, port: int) -> dict:
    """The hub's web process picks its ASGI server and address from the environment, as under honcho."""
    environment = dict(os.environ if environment is None else environment)
    if kind in HUB_SERVERS:
        environment.update({"ASGI_SERVER": kind, "WEB_BIND": "127.0.0.1", "PORT": str(port)})
    return environment


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants: uvicorn with WEB_CONCURRENCY > 1 serves from spawned worker processes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def _sum_over_tree(measure, pid: int) -> float:
    total = 0
    for member in process_tree(pid):
        try:
            total += measure(member)
        except OSError:  # exited between listing and reading
            continue
    return total


@dataclass
class Server:
    kind: str
    env: dict
    log_dir: Path
    redis_url: str
    channel_prefix: str = BARE_CHANNEL_PREFIX  # the bare server's pub/sub channels
    repo: Path = REPO  # whose code the server runs (another checkout, to compare commits)
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.log_dir / f"{self.kind}.log"

    @property
    def is_hub(self) -> bool:
        return self.kind in HUB_SERVERS

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, *, timeout: float = 60, port: int | None = None) -> None:
        """Start on `port` (by default a free one) and wait until it accepts connections."""
        self.port = port or free_port()
        argv = server_argv(self.kind, port=self.port, redis_url=self.redis_url, channel_prefix=self.channel_prefix)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(argv)}\n".encode())
            log.flush()
            environment = server_env(self.kind, self.env, port=self.port)
            self.process = subprocess.Popen(argv, cwd=self.repo, env=environment, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on port {self.port} within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, *, timeout: float = 10) -> None:
        """SIGTERM, and wait for the exit (SIGKILL after `timeout` seconds)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, timeout: float = 60) -> None:
        """Stop, then start again on the same port (what a deploy does to one web process)."""
        self.stop()
        self.start(timeout=timeout, port=self.port)

    def cpu_seconds(self) -> float:
        """CPU of the server and its workers (of those alive now: read before and after, not across a restart)."""
        return _sum_over_tree(cpu_seconds, self.pid)

    def rss_bytes(self) -> int:
        return _sum_over_tree(rss_bytes, self.pid)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def measured_on_one_server(
    options, *, secret_key: str, population: Callable, measure: Callable[..., Awaitable[str]]
) -> str:
    """The one-process measurements (`bench.connect_rate`, `bench.publish_rate`): in the bench's environment
    with `secret_key` (fixed, so tokens minted by one run are valid in the next; also this process's), with the
    file-descriptor limit raised, make `population(options)`, start the hub server `options.server` from
    `options.repo` on a flushed `options.redis_url`, run `measure(options, population, server)` on an event loop
    and return the line it gives, stopping the server whatever happened."""
    import redis

    from bench.clients import raise_fd_limit
    from bench.run import bench_environment

    environment = {**bench_environment(options), "SECRET_KEY": secret_key}
    os.environ.update(environment)
    raise_fd_limit()
    people = population(options)
    redis.Redis.from_url(options.redis_url).flushdb()
    server = Server(
        kind=options.server,
        env=environment,
        log_dir=options.log_dir,
        redis_url=options.redis_url,
        repo=options.repo,
    )
    server.start()
    try:
        return asyncio.run(measure(options, people, server))
    finally:
        server.stop()
