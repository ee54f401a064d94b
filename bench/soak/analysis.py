"""From what the soak recorded to its figures: pure functions, so they can be tested without a stack.

Inputs: the publisher's `Publish` records (who each notification was for, when
it was first sent), the clients' receipts `(key, connection, seq, live, stamp t,
received at)`, the database's delivery rows at the end, and the pushes the fake
FCM server accepted.

- **Lost**: a delivery still open when the settle bound ran out; a recipient
  of a published notification without a delivery row; or a settled delivery
  that never reached the user in any way (no receipt on any of the user's
  connections, no acknowledgement, no push FCM accepted for it).
- **Shown twice as new**: per connection, a live notification frame for a
  publish that connection had already received. Native frames say whether
  they are replayed (`replayed: true` repeats are not counted). SignalR frames
  do not: the hub sends a connection's replay first and never repeats a
  notification in it (`HubSession._first_sight`), so on SignalR *any* repeat
  on one connection is a live one. Publishes are keyed by their sequence
  number, so a second notification created by a retried publish counts too.
  Clients that never acknowledge are no exception: the sweep's resends reach
  only connections that have not shown the notification.
- **Live delivery recovery**: latency samples are (first attempt time of a
  single-recipient publish to an always-connected native client, its first
  receipt there minus that time; infinite if never received), keyed by
  publish time so that notifications published into an outage carry its
  delay. Department fan-outs are left out: their latency is of another kind
  (tens of members at once), and whether a short window holds one would
  decide its p99. The baseline is the p99 of samples published after the
  warm-up and before the first step. After a step, a window of `window`
  seconds slides in 0.25 s steps; a window is good if it holds samples and
  their p99 is at or below the threshold. The step has recovered at the
  first window start from which every window for `hold` seconds is good; the
  recovery time is that start minus the strike. The baseline, and each
  step's observation, end a second before the next strike
  (`judge.STRIKE_GUARD`): a notification published just before a strike is
  still on its way when it strikes.
  The threshold (`--threshold`): `window` (the default) is the highest
  window p99 seen the same way before the first step. A window holds a few
  dozen samples, so its p99 is nearly its maximum, and in calm conditions it
  exceeds the p99 of the whole baseline minute in a good share of windows
  (seen: 55 ms against 47 ms, restarting the `hold` count for seconds after
  a step that changed nothing); so "back at the baseline" means back to what
  the same instrument read before any chaos. `p99` compares with the
  baseline p99 itself, literally.
"""

import bisect
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.soak.client import REPLAYED
from bench.soak.database import OPEN_STATUSES, DeliveryRow
from bench.soak.population import Population
from bench.soak.publisher import Publish
from bench.stats import percentile as finite_percentile

Receipt = tuple[int, int, int, int, float, float]  # key, connection, seq, live, stamp t, received at
SLIDE_STEP = 0.25
EXAMPLES = 5


def percentile(values: list[float], q: float) -> float:
    """`bench.stats.percentile` (linear between ranks), where a never-received sample (inf) is the slowest."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if math.isinf(ordered[high]):  # inf - inf would make it NaN
        return ordered[low] if position == low else math.inf
    return finite_percentile(ordered, q)


# --- Deliveries: final states and losses --------------------------------------------------------------------


def state_label(row: DeliveryRow) -> str:
    return f"failed: {row.failure_reason or '?'}" if row.status == "failed" else row.status


def deliveries_by_state(rows: Iterable[DeliveryRow]) -> dict[str, int]:
    return dict(Counter(state_label(row) for row in rows).most_common())


@dataclass(frozen=True)
class Losses:
    open: list[tuple[int, int]]  # (seq, key)
    missing: list[tuple[int, int]]
    unreached: list[tuple[int, int]]
    unexpected: int  # rows for a (seq, recipient) the publisher never published to

    def all(self) -> list[tuple[int, int]]:
        return [*self.open, *self.missing, *self.unreached]

    def examples(self) -> list[str]:
        lines = [f"seq {seq} to key {key}: still open" for seq, key in self.open[:EXAMPLES]]
        lines += [f"seq {seq} to key {key}: no delivery row" for seq, key in self.missing[:EXAMPLES]]
        lines += [f"seq {seq} to key {key}: settled, never reached" for seq, key in self.unreached[:EXAMPLES]]
        return lines


def find_losses(
    *,
    publishes: list[Publish],
    rows: list[DeliveryRow],
    receipts: list[Receipt],
    population: Population,
    fcm_accepted: set[tuple[str, str]],  # (device token, notification id)
) -> Losses:
    key_of = population.key_of_user_id()
    expected = {(publish.seq, key) for publish in publishes if publish.published for key in publish.recipient_keys}
    by_pair = {(row.seq, key_of.get(row.recipient_id, -1)): row for row in rows}
    received = {(seq, key) for key, _connection, seq, *_ in receipts}
    open_pairs, unreached = [], []
    for pair, row in sorted(by_pair.items()):
        if row.status in OPEN_STATUSES:
            open_pairs.append(pair)
            continue
        device = population.users[pair[1]].device_token if pair[1] >= 0 else None
        pushed = device is not None and (device, row.notification_id) in fcm_accepted
        if not (row.acknowledged or pair in received or pushed):
            unreached.append(pair)
    return Losses(
        open=open_pairs,
        missing=sorted(expected - by_pair.keys()),
        unreached=unreached,
        unexpected=len(by_pair.keys() - expected),
    )


@dataclass(frozen=True)
class ConnectedFailures:
    pairs: list[tuple[int, int]]  # (seq, key)
    reasons: dict[str, int]
    received_anyway: int  # their client had it on a socket all the same (e.g. replayed on a later connect)


def connected_failures(rows: list[DeliveryRow], receipts: list[Receipt], population: Population) -> ConnectedFailures:
    """Failed deliveries of always-connected acknowledging users."""
    key_of = population.key_of_user_id()
    received = {(seq, key) for key, _connection, seq, *_ in receipts}
    pairs, reasons = [], Counter()
    for row in rows:
        key = key_of.get(row.recipient_id)
        if row.status == "failed" and key is not None and population.users[key].always_connected:
            pairs.append((row.seq, key))
            reasons[row.failure_reason or "?"] += 1
    return ConnectedFailures(
        pairs=pairs, reasons=dict(reasons), received_anyway=sum(1 for pair in pairs if pair in received)
    )


# --- Duplicates ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repeats:
    shown_twice: dict[str, int]  # by protocol
    times: list[float]  # when each was received
    examples: list[str]


def find_repeats(receipts: list[Receipt], population: Population) -> Repeats:
    seen: set[tuple[int, int, int]] = set()
    shown_twice: Counter = Counter()
    times: list[float] = []
    examples: list[str] = []
    for key, connection, seq, live, _sent, received in sorted(receipts, key=lambda receipt: receipt[5]):
        slot = (key, connection, seq)
        if slot in seen and live != REPLAYED:
            user = population.users[key]
            shown_twice[user.protocol] += 1
            times.append(received)
            if len(examples) < EXAMPLES:
                examples.append(f"seq {seq} again on connection {connection} of key {key} ({user.kind})")
        seen.add(slot)
    return Repeats(shown_twice=dict(shown_twice), times=times, examples=examples)


# --- Live latency and recovery ---------------------------------------------------------------------------------


def latency_samples(
    publishes: list[Publish], receipts: list[Receipt], probe_keys: set[int]
) -> list[tuple[float, float]]:
    """(published at, seconds to the first receipt or inf) per single-recipient publish to a probe client."""
    first: dict[tuple[int, int], float] = {}
    for key, _connection, seq, _live, _sent, received in receipts:
        if key in probe_keys and received < first.get((key, seq), math.inf):
            first[(key, seq)] = received
    samples = []
    for publish in publishes:
        if publish.published and publish.target == "user" and publish.target_id in probe_keys:
            latency = first.get((publish.target_id, publish.seq), math.inf) - publish.sent_at
            samples.append((publish.sent_at, latency))
    samples.sort()
    return samples


class LatencySeries:
    """Probe latency samples ordered by publish time, with sliding-window p99s."""

    def __init__(self, samples: list[tuple[float, float]]) -> None:
        self.times = [published for published, _ in samples]
        self.latencies = [latency for _, latency in samples]

    def write_csv(self, path: Path, *, origin: float) -> None:
        """The samples as `published_s,latency_ms` (seconds after `origin`; empty latency: never received)."""
        with path.open("w") as csv:
            csv.write("published_s,latency_ms\n")
            for published, latency in zip(self.times, self.latencies, strict=True):
                csv.write(
                    f"{published - origin:.3f},{latency * 1000:.1f}\n"
                    if math.isfinite(latency)
                    else f"{published - origin:.3f},\n"
                )

    def between(self, start: float, end: float) -> list[float]:
        return self.latencies[bisect.bisect_left(self.times, start) : bisect.bisect_left(self.times, end)]

    def p99(self, start: float, end: float) -> float | None:
        values = self.between(start, end)
        return percentile(values, 99) if values else None

    def window_p99s(self, start: float, end: float, window: float) -> list[float]:
        """The p99 of every window [t, t + window) with start <= t and t + window <= end (empty windows left out)."""
        values = []
        while start + window <= end + 1e-9:
            p99 = self.p99(start, start + window)
            if p99 is not None:
                values.append(p99)
            start += SLIDE_STEP
        return values

    def recovery(
        self, *, struck_at: float, horizon_end: float, threshold: float, window: float, hold: float
    ) -> float | None:
        """Seconds from the strike until the window p99 is at most `threshold` and stays there `hold` seconds."""
        starts = []
        start = struck_at
        while start + window <= horizon_end + 1e-9:
            starts.append(start)
            start += SLIDE_STEP
        good = []
        for start in starts:
            p99 = self.p99(start, start + window)
            good.append(p99 is not None and p99 <= threshold)
        for index, start in enumerate(starts):
            stretch = [ok for later, ok in zip(starts[index:], good[index:], strict=True) if later <= start + hold]
            if all(stretch):
                return start - struck_at
        return None


def milliseconds(seconds: float | None) -> float | None:
    if seconds is None or math.isnan(seconds):
        return None
    return seconds * 1000 if math.isfinite(seconds) else math.inf


def pushes_accepted(requests) -> tuple[set[tuple[str, str]], int]:
    """(device token, notification id) pairs FCM accepted, and how many of them it accepted more than once."""
    counts = Counter(
        (request.token, request.message.get("data", {}).get("notification_id", ""))
        for request in requests
        if request.outcome == "accepted"
    )
    return set(counts), sum(1 for count in counts.values() if count > 1)
