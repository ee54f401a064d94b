"""Command-line options of `python -m bench.soak` (`make soak SOAK_ARGS="..."`), and the delivery timings.

The defaults are the issue's: 1,000 clients, 50 notifications/s, 6 minutes of
publishing, the first minute without chaos (the latency baseline), then the six
chaos steps spaced evenly across the other five.

The stack runs with delivery timings shorter than production's defaults
(`DeliveryTimings`, documented in the README), so that every delivery settles
within about a minute of the last publish instead of several.
"""

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path

STEPS = ("redis", "pg", "sigterm", "kill9", "worker", "beat")
# What each kind of client does (bench/soak/client.py); offline users never connect.
KINDS = ("native", "signalr", "silent", "flaky", "offline")
DEFAULT_MIX = {"native": 35, "signalr": 20, "silent": 10, "flaky": 20, "offline": 15}
# How "back at the baseline" is read after a step (bench/soak/analysis.py explains why `window` is the default).
THRESHOLDS = {
    "window": "the highest sliding-window p99 before the first step",
    "p99": "the p99 of all samples before the first step",
}
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/notifyhub_soak"
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DeliveryTimings:
    """The NOTIFY_* settings the soak's processes run with, and the settle bound they imply.

    A delivery nobody acknowledges is sent at 0, then again after `ack_timeout`,
    2 times, 4 times ... (`max_ws_attempts` sends in all), then pushed; a push task that
    died is taken again by the sweep after `push_lease`; a delivery left
    `pending` by a dying process is dispatched again after `dispatch_grace`.
    So every delivery must be settled (acknowledged, pushed or failed) within
    `settle_bound` seconds of the last publish, or it is lost.
    """

    ack_timeout: float = 3.0
    max_ws_attempts: int = 3
    sweep_interval: float = 1.0
    push_lease: float = 15.0
    dispatch_grace: float = 5.0
    margin: float = 15.0

    @property
    def settle_bound(self) -> float:
        websocket_phase = self.ack_timeout * (2**self.max_ws_attempts - 1)
        return websocket_phase + self.push_lease + self.sweep_interval + self.dispatch_grace + self.margin

    def environment(self) -> dict[str, str]:
        return {
            "NOTIFY_ACK_TIMEOUT": f"{self.ack_timeout:g}",
            "NOTIFY_MAX_WS_ATTEMPTS": str(self.max_ws_attempts),
            "NOTIFY_SWEEP_INTERVAL": f"{self.sweep_interval:g}",
            "NOTIFY_PUSH_LEASE": f"{self.push_lease:g}",
            "NOTIFY_DISPATCH_GRACE": f"{self.dispatch_grace:g}",
        }

    def describe(self) -> str:
        return (
            f"ack timeout {self.ack_timeout:g} s × (2^{self.max_ws_attempts} − 1) + push lease {self.push_lease:g} s"
            f" + sweep interval {self.sweep_interval:g} s + dispatch grace {self.dispatch_grace:g} s"
            f" + margin {self.margin:g} s = {self.settle_bound:g} s"
        )


@dataclass(frozen=True)
class Options:
    clients: int
    rate: float
    seconds: float
    baseline: float
    steps: tuple[str, ...]
    mix: dict[str, int]
    department_share: float
    department_size: tuple[int, int]
    probe_share: float
    window: float
    hold: float
    recovery_limit: float
    threshold: str
    tolerance_ms: float
    warmup: float
    flaky_up: tuple[float, float]
    flaky_down: tuple[float, float]
    backoff_cap: float
    timings: DeliveryTimings
    client_processes: int
    seed: int | None
    database_url: str
    procfile: Path
    output: Path
    logs: Path
    result_json: Path | None

    @property
    def step_spacing(self) -> float:
        return (self.seconds - self.baseline) / len(self.steps) if self.steps else 0.0

    @property
    def observe_after_step(self) -> float:
        """Seconds of the whole stack every step is followed by at least (bench.soak.chaos.run_steps)."""
        return min(self.step_spacing, self.recovery_limit)

    @property
    def step_times(self) -> list[float]:
        """Seconds after publishing starts at which each chaos step runs: the first at the end of the baseline."""
        return [self.baseline + index * self.step_spacing for index in range(len(self.steps))]


def _range(kind):
    def parse(text: str) -> tuple:
        low, _, high = text.partition("-")
        values = (kind(low), kind(high or low))
        if values[0] < 0 or values[0] > values[1]:
            raise argparse.ArgumentTypeError(f"{text}: give LOW-HIGH with 0 <= LOW <= HIGH")
        return values

    return parse


def _steps(text: str) -> tuple[str, ...]:
    if text.strip() in ("", "none"):
        return ()
    steps = tuple(step.strip() for step in text.split(",") if step.strip())
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown step {', '.join(unknown)}; choose from {','.join(STEPS)} or none")
    return steps


def _mix(text: str) -> dict[str, int]:
    mix = dict.fromkeys(KINDS, 0)
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in mix or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"{part!r}: give KIND=WEIGHT with KIND one of {', '.join(KINDS)}")
        mix[kind.strip()] = int(weight)
    if mix["native"] == 0:
        raise argparse.ArgumentTypeError("the mix needs native clients: live latency is measured at them")
    return mix


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: a share is between 0 and 1")
    return value


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value

    return parse


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=(
            "Chaos soak: the Procfile's processes on a private Redis and the soak database, WebSocket clients of "
            "several kinds, a publisher, and chaos steps; exits 1 if a notification was lost or shown twice, a "
            "connected user's delivery failed, a 5xx was answered, or live delivery took over --recovery-limit "
            "seconds to come back after a step."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--clients", type=_positive(int), default=500, help="users, one client each (offline ones never connect)")
    add("--rate", type=_positive(float), default=20, help="notifications published per second")
    add("--seconds", type=_positive(float), default=360, help="publishing time")
    add("--baseline", type=_positive(float), default=60, help="seconds of publishing before the first chaos step")
    add("--steps", type=_steps, default=",".join(STEPS), help=f"chaos steps in order ({','.join(STEPS)}), or none")
    add(
        "--mix",
        type=_mix,
        default=",".join(f"{kind}={weight}" for kind, weight in DEFAULT_MIX.items()),
        help="relative weights of the client kinds: native and signalr ack everything and never leave; silent never "
        "acks (has an FCM device); flaky acks and reconnects at random (has a device); offline never connects "
        "(has a device)",
    )
    add("--department-share", type=_share, default=0.045, help="share of publishes sent to a department")
    add("--department-size", type=_range(int), default="20-50", help="members per department, LOW-HIGH")
    add(
        "--probe-share",
        type=_share,
        default=0.3,
        help="share of publishes aimed at an always-connected native client (more samples for the latency series)",
    )
    add("--window", type=_positive(float), default=2.0, help="sliding window of the live-latency p99, seconds")
    add("--hold", type=_positive(float), default=5.0, help="seconds the p99 must stay at the baseline to count")
    add("--recovery-limit", type=_positive(float), default=30.0, help="seconds a step may take to recover")
    add(
        "--threshold",
        choices=THRESHOLDS,
        default="window",
        help="what a window p99 must be back at after a step: "
        + "; ".join(f"{name}: {meaning}" for name, meaning in THRESHOLDS.items()),
    )
    add(
        "--tolerance-ms",
        type=float,
        default=50.0,
        help="added to the recovery threshold: on a shared 2-core machine a window p99 of a few tens of ms moves "
        "by that much while a process boots, and that is not live delivery failing to come back",
    )
    add("--warmup", type=float, default=5.0, help="seconds of publishing left out of the baseline")
    add("--flaky-up", type=_range(float), default="3-30", help="flaky clients stay connected LOW-HIGH s")
    add("--flaky-down", type=_range(float), default="0.2-3", help="then stay away LOW-HIGH s")
    add("--backoff-cap", type=_positive(float), default=30.0, help="clients' reconnect backoff cap, seconds")
    add("--ack-timeout", type=_positive(float), default=DeliveryTimings.ack_timeout, help="NOTIFY_ACK_TIMEOUT")
    timing = DeliveryTimings()
    add("--max-ws-attempts", type=_positive(int), default=timing.max_ws_attempts, help="NOTIFY_MAX_WS_ATTEMPTS")
    add("--sweep-interval", type=_positive(float), default=timing.sweep_interval, help="NOTIFY_SWEEP_INTERVAL")
    add("--push-lease", type=_positive(float), default=timing.push_lease, help="NOTIFY_PUSH_LEASE")
    add("--dispatch-grace", type=_positive(float), default=timing.dispatch_grace, help="NOTIFY_DISPATCH_GRACE")
    add("--settle-margin", type=float, default=DeliveryTimings.margin, help="seconds added to the settle bound")
    add("--client-processes", type=_positive(int), default=2, help="client swarm processes")
    add("--seed", type=int, default=None, help="random seed (targets, kinds, chaos-free jitter)")
    add("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_DATABASE_URL))
    add("--procfile", type=Path, default=REPO / "Procfile", help="the process lines to run")
    add("--output", type=Path, default=RESULTS_DIR / "soak.md", help="where the table is written")
    add("--logs", type=Path, default=RESULTS_DIR / "soak-logs", help="process logs")
    add("--result-json", type=Path, default=None, help="also write the result object as JSON here")
    args = parser.parse_args(argv)
    if args.steps and args.baseline >= args.seconds:
        parser.error("--baseline must be shorter than --seconds when chaos steps run")
    if args.department_size[0] < 1:
        parser.error("--department-size needs at least one member")
    if args.max_ws_attempts > 10:
        parser.error("--max-ws-attempts above 10 makes the settle bound hours long")
    args.timings = DeliveryTimings(
        ack_timeout=args.ack_timeout,
        max_ws_attempts=args.max_ws_attempts,
        sweep_interval=args.sweep_interval,
        push_lease=args.push_lease,
        dispatch_grace=args.dispatch_grace,
        margin=args.settle_margin,
    )
    return Options(**{option.name: getattr(args, option.name) for option in fields(Options)})
