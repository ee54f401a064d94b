"""Everything a run recorded, turned into its `SoakResult` (the figures come from `bench.soak.analysis`).

Besides the totals, every counted harm is put down to the chaos step it
happened after (`Timeline`): a 5xx or a close by when it happened, a loss or
a connected user's failed delivery by when its notification was published
(up to `STRIKE_GUARD` before the strike counts as after it), a repeat by when
it arrived. So the table says what each step breaks.
"""

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.soak import analysis
from bench.soak.chaos import StepRecord
from bench.soak.database import DeliveryRow
from bench.soak.options import Options
from bench.soak.population import Population
from bench.soak.publisher import HttpTally, Publish, Publisher
from bench.soak.result import SoakResult, StepOutcome
from bench.soak.swarm import ClientRecords

BEFORE_CHAOS = "before the first step"
# A notification published just before a strike is still on its way when it strikes (seen: one published 2 ms
# before a Redis restart took 30 s): the baseline, and each step's observation, end this long before a strike.
STRIKE_GUARD = 1.0


class Timeline:
    """Which step an event belongs to: the last one struck at or before it."""

    def __init__(self, steps: list[StepRecord]) -> None:
        struck = [step for step in steps if step.struck_at]
        self.times = [step.struck_at for step in struck]
        self.names = [step.name for step in struck]

    def phase_of(self, when: float) -> str:
        index = bisect.bisect_right(self.times, when) - 1
        return self.names[index] if index >= 0 else BEFORE_CHAOS

    def count(self, times: Iterable[float], *, lead: float = 0.0) -> Counter:
        """Events per phase; `lead` moves each that much later (a publish just before a strike is its victim)."""
        return Counter(self.phase_of(when + lead) for when in times)


@dataclass
class Recorded:
    """What one run left behind: the driver's records, the clients', the database's and the fake FCM's."""

    options: Options
    population: Population
    steps: list[StepRecord]
    publisher: Publisher
    tally: HttpTally
    records: ClientRecords
    rows: list[DeliveryRow]
    notifications_per_seq: dict[int, list[str]]
    fcm_requests: list
    publish_started: float
    publish_seconds: float  # as long as it lasted (longer than planned if the steps ran late)
    settled: bool
    settle_seconds: float
    devices: int
    meta: dict[str, str]


def _http_status(outcome: str) -> int | None:
    """500 for "HTTP 500", None for an error name."""
    code = outcome.removeprefix("HTTP ")
    return int(code) if outcome.startswith("HTTP ") and code.isdigit() else None


def judge(recorded: Recorded) -> SoakResult:
    options, population, records = recorded.options, recorded.population, recorded.records
    publishes = recorded.publisher.publishes
    sent_at = {publish.seq: publish.sent_at for publish in publishes}
    accepted, pushed_twice = analysis.pushes_accepted(recorded.fcm_requests)
    losses = analysis.find_losses(
        publishes=publishes, rows=recorded.rows, receipts=records.receipts, population=population, fcm_accepted=accepted
    )
    repeats = analysis.find_repeats(records.receipts, population)
    failures = analysis.connected_failures(recorded.rows, records.receipts, population)
    series = analysis.LatencySeries(
        analysis.latency_samples(publishes, records.receipts, set(population.keys_of("native")))
    )
    series.write_csv(options.logs / "latency-samples.csv", origin=recorded.publish_started)
    _write_receipts(options.logs / "receipts.csv", records.receipts, origin=recorded.publish_started)
    baseline, threshold = _baseline(series, recorded)

    handshake_5xx = [when for when, outcome in records.handshake_failures if (_http_status(outcome) or 0) >= 500]
    closes = Counter(name for _, name in records.server_closes)
    closes_1011 = [when for when, name in records.server_closes if name.endswith(" 1011")]
    timeline = Timeline(recorded.steps)
    harms = {
        "lost": timeline.count((sent_at.get(seq, 0.0) for seq, _ in losses.all()), lead=STRIKE_GUARD),
        "shown twice": timeline.count(repeats.times),
        "connected failed": timeline.count((sent_at.get(seq, 0.0) for seq, _ in failures.pairs), lead=STRIKE_GUARD),
        "5xx": timeline.count([*recorded.tally.server_error_times, *handshake_5xx]),
        "1011 closes": timeline.count(closes_1011),
        "closes": timeline.count(when for when, _ in records.server_closes),
    }
    http = {endpoint: dict(outcomes) for endpoint, outcomes in recorded.tally.outcomes.items()}
    http["websocket handshake (failures only)"] = dict(Counter(outcome for _, outcome in records.handshake_failures))
    return SoakResult(
        meta=recorded.meta,
        published=sum(publish.published for publish in publishes),
        publishes_replayed=sum(publish.replayed for publish in publishes),
        publishes_failed=sum(not publish.published for publish in publishes),
        published_twice=sum(1 for ids in recorded.notifications_per_seq.values() if len(ids) > 1),
        deliveries=len(recorded.rows),
        deliveries_by_state=analysis.deliveries_by_state(recorded.rows),
        lost_open=len(losses.open),
        lost_missing=len(losses.missing),
        lost_unreached=len(losses.unreached),
        lost_examples=losses.examples(),
        shown_twice=repeats.shown_twice,
        shown_twice_examples=repeats.examples,
        server_errors={**recorded.tally.server_errors(), "websocket handshake": len(handshake_5xx)},
        http=http,
        closes=dict(closes.most_common()),
        closes_1011=len(closes_1011),
        connected_failed=failures.reasons,
        connected_failed_received=failures.received_anyway,
        baseline_p99_ms=analysis.milliseconds(baseline),
        recovery_threshold_ms=analysis.milliseconds(threshold),
        latency_ms=_latency_summary(series),
        publish_seconds=_publish_times(publishes, before=_first_strike(recorded)),
        steps=_step_outcomes(series, threshold, recorded, harms),
        settled=recorded.settled,
        settle_seconds=recorded.settle_seconds,
        settle_bound=options.timings.settle_bound,
        recovery_limit=options.recovery_limit,
        info={
            "counted before the first step": {
                name: counts[BEFORE_CHAOS] for name, counts in harms.items() if counts[BEFORE_CHAOS]
            },
            "devices registered through the API": recorded.devices,
            "connections opened (hello, or SignalR handshake answered)": records.connections,
            "acknowledgements the hub refused": dict(records.ack_errors),
            "SignalR acknowledgements left unanswered by a close": records.acks_unanswered,
            "SignalR closes with an error": dict(records.signalr_close_errors),
            "client errors": dict(records.client_errors),
            "pushes FCM accepted (notification and device)": len(accepted),
            "pushes FCM accepted twice for one notification and device": pushed_twice,
            "failed deliveries a client acknowledged later": sum(
                1 for row in recorded.rows if row.status == "failed" and row.acknowledged
            ),
            "deliveries for a recipient the publisher never published to": losses.unexpected,
            "publishes sent over a second late": recorded.publisher.late,
            "notification frames without a soak stamp": records.stray_frames,
        },
    )


def _write_receipts(path: Path, receipts: list, *, origin: float) -> None:
    """Every notification frame the clients got, for whoever looks into a finding (times after `origin`)."""
    with path.open("w") as csv:
        csv.write("key,connection,seq,live,published_s,received_s\n")
        for key, connection, seq, live, sent, received in sorted(receipts, key=lambda receipt: receipt[5]):
            csv.write(f"{key},{connection},{seq},{live},{sent - origin:.3f},{received - origin:.3f}\n")


def _baseline(series: analysis.LatencySeries, recorded: Recorded) -> tuple[float | None, float | None]:
    """The p99 before the first step, and the recovery threshold (see `--threshold`)."""
    options = recorded.options
    start = recorded.publish_started + options.warmup
    end = (
        recorded.steps[0].struck_at - STRIKE_GUARD
        if recorded.steps
        else recorded.publish_started + recorded.publish_seconds
    )
    values = series.between(start, end)
    if not values:
        return None, None
    baseline = analysis.percentile(values, 99)
    tolerance = options.tolerance_ms / 1000  # the series is in seconds
    if options.threshold == "p99":
        return baseline, baseline + tolerance
    return baseline, max([baseline, *series.window_p99s(start, end, options.window)]) + tolerance


def _first_strike(recorded: Recorded) -> float:
    struck = [step.struck_at for step in recorded.steps if step.struck_at]
    return min(struck) if struck else recorded.publish_started + recorded.publish_seconds


def _publish_times(publishes: list[Publish], *, before: float) -> dict[str, float]:
    """How long publishes sent before `before` took to be answered (retries included): p50, p99."""
    seconds = [publish.answered_at - publish.sent_at for publish in publishes if publish.sent_at < before]
    if not seconds:
        return {}
    return {"p50": analysis.percentile(seconds, 50), "p99": analysis.percentile(seconds, 99)}


def _latency_summary(series: analysis.LatencySeries) -> dict[str, float]:
    values = series.latencies
    if not values:
        return {}
    return {
        "p50": analysis.milliseconds(analysis.percentile(values, 50)),
        "p99": analysis.milliseconds(analysis.percentile(values, 99)),
        "max": analysis.milliseconds(max(values)),
    }


def _step_outcomes(
    series: analysis.LatencySeries, threshold: float | None, recorded: Recorded, harms: dict[str, Counter]
) -> list[StepOutcome]:
    options, steps = recorded.options, recorded.steps
    publish_ended = recorded.publish_started + recorded.publish_seconds
    outcomes = []
    for index, step in enumerate(steps):
        following = steps[index + 1] if index + 1 < len(steps) else None
        horizon_end = (
            following.struck_at - STRIKE_GUARD if following is not None and following.struck_at else publish_ended
        )
        recovery = None
        if threshold is not None and step.struck_at:
            recovery = series.recovery(
                struck_at=step.struck_at,
                horizon_end=horizon_end,
                threshold=threshold,
                window=options.window,
                hold=options.hold,
            )
        until = horizon_end if recovery is None else step.struck_at + recovery
        affected = series.between(step.struck_at, until + options.window)
        outcomes.append(
            StepOutcome(
                name=step.name,
                description=step.description,
                at=step.struck_at - recorded.publish_started,
                detail=step.detail,
                recovery=recovery,
                horizon=horizon_end - step.struck_at,
                worst_latency_ms=analysis.milliseconds(max(affected)) if affected else None,
                caused={name: counts[step.name] for name, counts in harms.items() if counts[step.name]},
            )
        )
    return outcomes
