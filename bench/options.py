"""Command-line options of `python -m bench` (`make bench BENCH_ARGS="..."`).

The defaults fit a run of about four and a half minutes on a 2-core machine; every
scenario size and round count can be changed here.
"""

import argparse
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from bench.stack import HUB_SERVERS, REPO, SERVERS

SCENARIOS = ("latency", "fanout", "throughput", "memory", "acks", "batch", "reconnect")
PROFILED = ("connect", "latency", "fanout", "throughput", "acks", "batch")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/notifyhub_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# --quick: one round, memory at 1,000 only, shorter phases (about 3 minutes even when the hub is slow).
QUICK = ["--rounds", "1", "--memory-points", "1000", "--fanout-sends", "3", "--latency-seconds", "2"]
QUICK += ["--throughput-seconds", "2", "--batch-seconds", "2"]


def _given(name: str, argv: list[str]) -> bool:
    flag = "--" + name.replace("_", "-")
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


@dataclass(frozen=True)
class Options:
    servers: tuple[str, ...]
    scenarios: tuple[str, ...]
    rounds: int
    clients: int
    rate: float
    latency_seconds: float
    department_size: int
    fanout_sends: int
    throughput_seconds: float
    throughput_window: int
    publish_concurrency: int
    memory_points: tuple[int, ...]
    ack_sends: int
    batch_size: int
    batch_seconds: float
    storm_clients: int
    storm_rate: float
    storm_missed: int
    client_processes: int
    connect_concurrency: int
    profile: tuple[str, ...]
    database_url: str
    redis_url: str
    output: Path

    @property
    def users(self) -> int:
        """Connection keys needed: every client, every memory point, and the reconnect storm's clients."""
        storm = self.storm_clients if "reconnect" in self.scenarios else 0
        return max(self.clients, self.department_size, *self.memory_points, storm)


def _csv(kind, choices=None):
    def parse(text: str) -> tuple:
        values = tuple(kind(item.strip()) for item in text.split(",") if item.strip())
        if choices is not None:
            unknown = [value for value in values if value not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(f"unknown {', '.join(map(str, unknown))}; choose from {choices}")
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        return values

    return parse


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value

    return parse


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="NotifyHub end to end, against a bare websockets + Redis pub/sub baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--servers", type=_csv(str, SERVERS), default=SERVERS, help="servers to run, alternately, each round")
    add("--scenarios", type=_csv(str, SCENARIOS), default=SCENARIOS, help="scenarios to run")
    add("--rounds", type=_positive(int), default=3, help="rounds; every figure is the median over rounds")
    add("--clients", type=_positive(int), default=2_000, help="connected clients during the scenarios")
    add("--rate", type=_positive(float), default=200, help="latency scenario: notifications per second")
    add("--latency-seconds", type=_positive(float), default=3, help="latency scenario: publishing time per round")
    add("--department-size", type=_positive(int), default=1_000, help="fan-out: members of the department")
    add("--fanout-sends", type=_positive(int), default=6, help="fan-out: sends per round")
    add("--throughput-seconds", type=_positive(float), default=3, help="throughput: publishing time per round")
    add("--throughput-window", type=_positive(int), default=4, help="throughput: fan-out sends in flight at most")
    add("--publish-concurrency", type=_positive(int), default=2, help="throughput: concurrent publish requests")
    add(
        "--memory-points",
        type=_csv(int),
        default=(1_000, 5_000),
        help="connection counts at which each server's RSS is read while its clients connect",
    )
    # 10: a rate over 1,000 acks (~0.1 s) was mostly the driver's 20 ms polling of the database, not the hub.
    add("--ack-sends", type=_positive(int), default=10, help="acks: fan-out sends whose acks are held, then sent")
    add("--batch-size", type=_positive(int), default=100, help="batch: notifications per batch publish request")
    add(
        "--batch-seconds",
        type=_positive(float),
        default=3,
        help="batch: publishing time per round, for single publishes and again for batches",
    )
    add("--storm-clients", type=_positive(int), default=5_000, help="reconnect: clients connected at the restart")
    add(
        "--storm-rate",
        type=_positive(float),
        default=20,
        help="reconnect: live notifications per second to clients already back, during the storm",
    )
    add(
        "--storm-missed",
        type=_positive(int),
        default=50,
        help="reconnect: notifications published while the server is down (each to 10 of the clients)",
    )
    add("--client-processes", type=_positive(int), default=2, help="client swarm processes")
    add("--connect-concurrency", type=_positive(int), default=32, help="handshakes in flight per client process")
    add(
        "--profile",
        type=_csv(str, PROFILED),
        default=(),
        help=f"py-spy the hub servers during these phases ({','.join(PROFILED)}); needs ptrace rights",
    )
    add(
        "--quick",
        action="store_true",
        help=f"a shorter run: {' '.join(QUICK)} (flags given explicitly still win)",
    )
    add("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    add("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    add("--output", type=Path, default=RESULTS_DIR, help="where latest.md and the plot go")
    if argv is None:  # the command line, as parse_args reads it: what was given explicitly must still win
        argv = sys.argv[1:]
    args = parser.parse_args(argv)
    if args.quick:
        quick = parser.parse_args(QUICK)
        quick_names = (
            "rounds",
            "memory_points",
            "fanout_sends",
            "latency_seconds",
            "throughput_seconds",
            "batch_seconds",
        )
        for name in quick_names:
            if not _given(name, argv):
                setattr(args, name, getattr(quick, name))
    if args.department_size > args.clients:
        parser.error("--department-size cannot exceed --clients (the members are among the connected clients)")
    args.memory_points = tuple(sorted(set(args.memory_points)))
    return Options(**{option.name: getattr(args, option.name) for option in fields(Options)})


def one_server_parser(module: str, doc: str, *, measured: str) -> argparse.ArgumentParser:
    """The options every one-server measurement (`bench.connect_rate`, `bench.publish_rate`) takes: which server,
    which checkout, py-spy, the bench's database and Redis, where the log goes; the caller adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    add = parser.add_argument
    add("--server", choices=HUB_SERVERS, default="uvicorn")
    add("--repo", type=Path, default=REPO, help="the checkout whose hub is served")
    add("--profile", type=Path, help=f"py-spy the web process (on-GIL samples) during the {measured} into this file")
    add("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    add("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    add("--log-dir", type=Path, default=RESULTS_DIR / "logs", help="where the server's log goes")
    return parser
