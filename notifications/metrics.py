"""What NotifyHub measures for /metrics, and the small functions that record it (docs/metrics.md explains each).

Services, the hub and the tasks call the functions here and nothing of prometheus-client, so every metric's
meaning is in this one file. What changes the database is recorded after its commit (`*_on_commit`, like
`notifications.layer`'s sends); what a process observes of itself (its connections, its router) as it
happens. Values go to this process's files in the metrics directory (`core.metrics`): an increment is a write
to memory, cheap enough for the publish and ack paths. Who is online is read from Redis at scrape time
(`PresenceCollector`).

Label values are a handful of fixed words (sources, states, reasons, FCM error codes), never ids.
"""

import bisect
import logging
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager

from django.db import transaction
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from core import metrics as host_metrics  # first: the multiprocess directory, before any metric below
from notifications import presence

logger = logging.getLogger(__name__)

NOTIFICATIONS_PUBLISHED = Counter(
    "notifyhub_notifications_published",
    "Notifications published (committed), by where they came from: api (POST /api/notifications/) or workflow.",
    ["source"],
)
DELIVERIES_CREATED = Counter(
    "notifyhub_deliveries_created",
    "Deliveries written by publishing (one per recipient), by the notification's source.",
    ["source"],
)
DELIVERIES_FINISHED = Counter(
    "notifyhub_deliveries_finished",
    "Deliveries that reached a final state (acknowledged, read, pushed, failed, resolved), with the failure reason.",
    ["state", "reason"],
)
ACKS = Counter(
    "notifyhub_acks",
    "Acknowledgements handled (hub and API), by outcome: acknowledged, already (a repeat), not_found.",
    ["outcome"],
)
PUBLISH_TO_ACK_SECONDS = Histogram(
    "notifyhub_publish_to_ack_seconds",
    "From a delivery's publish (its commit's transaction) to its first acknowledgement.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
PUSH_RESULTS = Counter(
    "notifyhub_push_results",
    "FCM's answers per device (push backend fcm, or simulated by log), by outcome and FCM error code.",
    ["backend", "outcome", "code"],
)
SWEEP_RUNS = Counter("notifyhub_sweep_runs", "Retry sweeps completed.")
SWEEP_LAG_SECONDS = Gauge(
    "notifyhub_sweep_lag_seconds",
    "How late the oldest due delivery was when the latest sweep took it (0 when none was due).",
    multiprocess_mode="mostrecent",
)
SWEEP_BATCH_SIZE = Histogram(
    "notifyhub_sweep_batch_size",
    "Deliveries claimed per sweep batch (batches that claimed any).",
    buckets=(1, 10, 50, 100, 250, 500),
)
SWEEP_DELIVERIES = Counter(
    "notifyhub_sweep_deliveries",
    "Deliveries the sweep moved on, by step: resent, push_queued, expired, held (presence incomplete).",
    ["step"],
)
HUB_CONNECTIONS = Gauge(
    "notifyhub_hub_connections",
    "WebSocket connections open on this host's web processes, by protocol: native or signalr.",
    ["protocol"],
    multiprocess_mode="livesum",
)
HUB_ROUTER_HEALTHY = Gauge(
    "notifyhub_hub_router_healthy",
    "1 while a web process's hub router receives from the channel layer, else 0 (one series per process).",
    # A label, so that only processes that run a router have a series (an unlabelled gauge exists at import).
    ["hub_process"],
    multiprocess_mode="liveall",
)


# --- Publishing and deliveries (services, after commit) -----------------------------------------------------------


def notification_published_on_commit(*, source: str, deliveries: int) -> None:
    """After commit, count a published notification and its deliveries."""

    def record_after_commit() -> None:
        NOTIFICATIONS_PUBLISHED.labels(source).inc()
        DELIVERIES_CREATED.labels(source).inc(deliveries)

    transaction.on_commit(record_after_commit, robust=True)


def deliveries_finished_on_commit(*, state: str, count: int, reason: str = "") -> None:
    """After commit, count `count` deliveries that reached the final `state` (failed: with its `reason`)."""
    if count <= 0:
        return

    def record_after_commit() -> None:
        DELIVERIES_FINISHED.labels(state, reason).inc(count)

    transaction.on_commit(record_after_commit, robust=True)


def acks_on_commit(*, outcomes: Sequence[str], ack_delays: Sequence[float]) -> None:
    """After commit, count acks by outcome, the deliveries they acknowledged, and how long after publish each came."""

    def record_after_commit() -> None:
        for outcome, count in Tally(outcomes).items():
            ACKS.labels(outcome).inc(count)
        if ack_delays:
            DELIVERIES_FINISHED.labels("acknowledged", "").inc(len(ack_delays))
            _observe_many(PUBLISH_TO_ACK_SECONDS, [max(seconds, 0.0) for seconds in ack_delays])

    transaction.on_commit(record_after_commit, robust=True)


def _observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """`histogram.observe(amount)` for every amount, in one write per bucket hit plus one for the sum.

    The hub writes acks in batches of up to 500: observing each would be two file writes per ack (~2 us each),
    more than the rest of recording a batch. prometheus-client has no batch observe; this does what its
    `observe` does (add to the sum; add one to the first bucket whose bound is not below the amount), on the
    same attributes (tests/notifications/test_metrics.py checks the exposition against single observes).
    """
    bounds = histogram._upper_bounds
    histogram._sum.inc(sum(amounts))
    for bucket, count in Tally(bisect.bisect_left(bounds, amount) for amount in amounts).items():
        histogram._buckets[bucket].inc(count)


def record_push_results(*, backend: str, results: Iterable[tuple[str, str]]) -> None:
    """Count one push round's answers: (outcome, FCM error code or "") per device."""
    for (outcome, code), count in Tally(results).items():
        PUSH_RESULTS.labels(backend, outcome, code).inc(count)


def record_sweep(*, lag_seconds: float, batch_sizes: Iterable[int], steps: dict[str, int]) -> None:
    """Count one completed sweep: how late it found the oldest due delivery, its batches, what it did."""
    SWEEP_RUNS.inc()
    SWEEP_LAG_SECONDS.set(max(lag_seconds, 0.0))
    for size in batch_sizes:
        if size:
            SWEEP_BATCH_SIZE.observe(size)
    for step, count in steps.items():
        if count:
            SWEEP_DELIVERIES.labels(step).inc(count)


# --- The hub (web processes, as it happens) ----------------------------------------------------------------------


def hub_connection_open(protocol: str) -> AbstractContextManager[None]:
    """Counts a connection as open for as long as the `with` block runs."""
    return HUB_CONNECTIONS.labels(protocol).track_inprogress()


def record_router_health(*, healthy: bool) -> None:
    """Record whether this process's hub router receives (its watchdog, every round)."""
    HUB_ROUTER_HEALTHY.labels(presence.PROCESS_ID).set(1 if healthy else 0)


# --- Read at scrape time ----------------------------------------------------------------------------------------


class PresenceCollector:
    """Who is online across the hub (every host), read from the presence registry in Redis at each scrape.

    Through the process's own presence client (no new connection per scrape). With Redis away it reports
    `notifyhub_presence_registry_up 0` and no counts, and the scrape still answers.
    """

    def collect(self) -> Iterator[Metric]:
        registry_up = GaugeMetricFamily(
            "notifyhub_presence_registry_up", "1 if this scrape read the presence registry in Redis, else 0."
        )
        try:
            users, connections = presence.online_counts()
        except Exception as error:
            logger.warning("metrics: the presence registry is unreadable: %s", error)
            registry_up.add_metric([], 0)
            yield registry_up
            return
        yield GaugeMetricFamily(
            "notifyhub_users_online", "Users with at least one live hub connection, on any host.", value=users
        )
        yield GaugeMetricFamily(
            "notifyhub_presence_connections",
            "Live hub connections in the presence registry, on any host.",
            value=connections,
        )
        registry_up.add_metric([], 1)
        yield registry_up


def register_scrape_collectors() -> None:
    """Add what is read at scrape time to /metrics (NotificationsConfig.ready())."""
    host_metrics.register_collector(PresenceCollector())
