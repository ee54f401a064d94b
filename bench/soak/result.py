"""The soak's result object and its rule (what `make soak`'s exit status and the soak test judge).

The rule, from the issue: 0 lost, 0 shown twice on a connection, 0
deliveries to a connected user ending `failed`, 0 5xx, and live delivery
back to its pre-chaos p99 within `recovery_limit` (30 s) of each chaos step.
Two more make a run invalid: a publish the API never accepted, and one that
created two notifications. 1011 closes are reported, not judged.
`violations()` lists every way a run broke it; an empty list is a pass.
The object is plain data, saved as JSON (`--result-json`) so a test can
judge a run without reading its text.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

# A publish answered, or a probe notification received, this late before any chaos: the stack is overloaded.
OVERLOAD_SECONDS = 5.0


@dataclass
class StepOutcome:
    name: str
    description: str
    at: float  # seconds after publishing started
    detail: str
    recovery: float | None  # seconds from the strike until live latency was back at the baseline p99; None: never
    horizon: float  # seconds observed after the strike (until the next step, or the end of publishing)
    worst_latency_ms: float | None  # the slowest probe delivery published between the strike and the recovery
    # What happened between this strike and the next: "lost", "shown twice", "connected failed", "5xx",
    # "1011 closes", "closes" (all closes the server caused) -> count, zeros left out.
    caused: dict[str, int] = field(default_factory=dict)


@dataclass
class SoakResult:
    meta: dict[str, str]
    published: int  # publishes answered 201, or 200 (an idempotent replay of an attempt that had published)
    publishes_replayed: int  # of those, answered 200
    publishes_failed: int  # never answered 2xx (refused, or given up after retrying)
    published_twice: int  # publish sequence numbers with more than one notification (idempotency broken)
    deliveries: int
    deliveries_by_state: dict[str, int]
    lost_open: int  # still pending or sent when the settle bound ran out
    lost_missing: int  # a recipient of a published notification without a delivery row
    lost_unreached: int  # settled, yet never on a socket, never acknowledged, never accepted by FCM
    lost_examples: list[str]
    shown_twice: dict[str, int]  # by protocol: a live frame for a notification that connection had already had
    shown_twice_examples: list[str]
    server_errors: dict[str, int]  # 5xx answers by endpoint (publish, devices, websocket handshake)
    http: dict[str, dict[str, int]]  # every answer (or exception) by endpoint
    closes: dict[str, int]  # closes the server caused, "<protocol> <code>" (1006: no close frame)
    closes_1011: int
    connected_failed: dict[str, int]  # failed deliveries of always-connected acking users, by reason
    connected_failed_received: int  # of those, how many their client received anyway (e.g. replayed later)
    baseline_p99_ms: float | None
    recovery_threshold_ms: float | None  # what a window p99 must be back at after a step
    latency_ms: dict[str, float]  # probe latency over the whole run: p50, p99, max
    publish_seconds: dict[str, float]  # first attempt to final answer of the publishes before the first step: p50, p99
    steps: list[StepOutcome]
    settled: bool
    settle_seconds: float
    settle_bound: float
    recovery_limit: float
    info: dict[str, object] = field(default_factory=dict)

    @property
    def overloaded(self) -> bool:
        """The stack fell behind the publishing rate before any chaos: then latency and repeats measure the backlog."""
        return (self.publish_seconds.get("p99") or 0) > OVERLOAD_SECONDS or (
            self.baseline_p99_ms or 0
        ) > OVERLOAD_SECONDS * 1000

    @property
    def lost(self) -> int:
        return self.lost_open + self.lost_missing + self.lost_unreached

    @property
    def shown_twice_total(self) -> int:
        return sum(self.shown_twice.values())

    @property
    def server_errors_total(self) -> int:
        return sum(self.server_errors.values())

    @property
    def connected_failed_total(self) -> int:
        return sum(self.connected_failed.values())

    def violations(self) -> list[str]:
        """Every rule this run broke, one line each (empty: the run passed)."""
        broken = []
        if self.lost:
            broken.append(
                f"{self.lost} lost ({self.lost_open} never settled, {self.lost_missing} rows missing, "
                f"{self.lost_unreached} never reached the user)"
            )
        if self.shown_twice_total:
            broken.append(f"{self.shown_twice_total} shown twice as new on one connection")
        if self.connected_failed_total:
            broken.append(f"{self.connected_failed_total} deliveries to connected users failed")
        if self.server_errors_total:
            broken.append(f"{self.server_errors_total} 5xx answers")
        for step in self.steps:
            if step.recovery is None:
                broken.append(f"{step.name}: live delivery not back at the threshold within {step.horizon:.0f} s")
            elif step.recovery > self.recovery_limit:
                limit = f"limit {self.recovery_limit:g} s"
                broken.append(f"{step.name}: live delivery back after {step.recovery:.1f} s ({limit})")
        # Not in the list, but a run with either cannot vouch for the others: what was never accepted
        # cannot be checked for loss, and a publish that made two notifications shows the user one twice.
        if self.publishes_failed:
            broken.append(f"{self.publishes_failed} publishes never accepted")
        if self.published_twice:
            broken.append(f"{self.published_twice} publishes created two notifications (idempotency)")
        return broken

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "SoakResult":
        data = json.loads(text)
        data["steps"] = [StepOutcome(**step) for step in data["steps"]]
        return cls(**{item.name: data[item.name] for item in fields(cls)})

    @classmethod
    def load(cls, path: Path) -> "SoakResult":
        return cls.from_json(path.read_text())
