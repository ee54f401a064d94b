"""The dashboard's numbers: read-only aggregates over a period (last hour, day or week), each one SQL statement.

A period holds the notifications published in it and their deliveries (by `Delivery.created_at`, written in the
publish transaction: the BRIN index `delivery_created_brin` finds a period's rows in a table kept in insert
order). Per period, `period_stats` runs five statements, whatever the table's size:

- notifications published (`Notification.created_at`, btree);
- deliveries by state, failures by reason, publish→ack and publish→push percentiles (one pass over the period's
  deliveries, joined to their notifications for the publish time);
- push outcomes from the attempt log (BRIN on `DeliveryAttempt.created_at`);
- the open backlog now and the sweep's lag (`delivery_status_next_attempt`: open rows only);
- the series per bucket for the chart (`date_bin`, the same BRIN scan).

`recent_failures` reads the partial index on `failed_at` (failed rows only, so fan-out inserts never pay for it).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, Notification

# An open delivery whose next attempt is older than this is overdue: the retry sweep is behind.
OVERDUE_AFTER = timedelta(minutes=1)
RECENT_FAILURES = 10


class Period(Enum):
    """A dashboard period: how far back it reaches and the width of its chart's buckets."""

    HOUR = ("hour", "Last hour", timedelta(hours=1), timedelta(minutes=5), "per 5 minutes", 1)
    DAY = ("day", "Last 24 hours", timedelta(days=1), timedelta(hours=1), "per hour", 1)
    # The week's percentiles from every tenth delivery (see `delivery_aggregates`).
    WEEK = ("week", "Last 7 days", timedelta(days=7), timedelta(hours=6), "per 6 hours", 10)

    def __init__(
        self, key: str, label: str, length: timedelta, bucket: timedelta, bucket_label: str, percentile_sample: int
    ) -> None:
        self.key = key
        self.label = label
        self.length = length
        self.bucket = bucket
        self.bucket_label = bucket_label
        self.percentile_sample = percentile_sample

    @classmethod
    def from_key(cls, key: str | None) -> "Period | None":
        """The period named `key` ('hour', 'day', 'week'), or None if there is none."""
        return next((period for period in cls if period.key == key), None)


DEFAULT_PERIOD = Period.DAY


@dataclass(frozen=True)
class Percentiles:
    """Seconds from publish to an event: median, 95th and 99th percentile (None: no such event in the period)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True)
class DeliveryCounts:
    """The period's deliveries by state now. `pushed_real` reached FCM; `pushed_simulated` only the log backend."""

    total: int = 0
    pending: int = 0
    sent: int = 0
    acknowledged: int = 0
    read: int = 0
    pushed_real: int = 0
    pushed_simulated: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Backlog:
    """Open deliveries now (whatever their period): waiting to be sent, sent and waiting for an ack, overdue."""

    pending: int
    sent: int
    overdue: int
    # The oldest overdue `next_attempt_at`: how far behind the retry sweep is (None: it is not).
    oldest_overdue_at: datetime | None

    def sweep_lag_seconds(self, now: datetime) -> float:
        return (now - self.oldest_overdue_at).total_seconds() if self.oldest_overdue_at else 0.0


@dataclass(frozen=True)
class SeriesPoint:
    """One chart bucket: notifications published in it, and how their deliveries stand now."""

    start: datetime
    published: int
    delivered: int  # acknowledged, read or pushed
    failed: int


@dataclass(frozen=True)
class PeriodStats:
    period: Period
    since: datetime
    now: datetime
    published: int
    deliveries: DeliveryCounts
    to_ack: Percentiles
    to_push: Percentiles
    push_outcomes: dict[str, int]
    backlog: Backlog
    series: list[SeriesPoint]


def period_stats(period: Period, *, now: datetime | None = None) -> PeriodStats:
    """Every number of the dashboard for `period` up to `now` (five SQL statements)."""
    now = now or timezone.now()
    since = now - period.length
    deliveries, to_ack, to_push = delivery_aggregates(since, now, sample=period.percentile_sample)
    return PeriodStats(
        period=period,
        since=since,
        now=now,
        published=Notification.objects.filter(created_at__gte=since, created_at__lt=now).count(),
        deliveries=deliveries,
        to_ack=to_ack,
        to_push=to_push,
        push_outcomes=push_outcomes(since, now),
        backlog=backlog(now),
        series=series(period, since, now),
    )


_STATES = Delivery.Status
_REASONS = [reason.value for reason in Delivery.FailureReason]

# One pass over the period's deliveries (BRIN on created_at), each joined to its notification for the publish time.
_DELIVERY_AGGREGATES = f"""
SELECT
    count(*),
    count(*) FILTER (WHERE d.status = '{_STATES.PENDING}'),
    count(*) FILTER (WHERE d.status = '{_STATES.SENT}'),
    count(*) FILTER (WHERE d.status = '{_STATES.ACKNOWLEDGED}'),
    count(*) FILTER (WHERE d.status = '{_STATES.READ}'),
    count(*) FILTER (WHERE d.status = '{_STATES.PUSHED}' AND NOT d.push_simulated),
    count(*) FILTER (WHERE d.status = '{_STATES.PUSHED}' AND d.push_simulated),
    count(*) FILTER (WHERE d.status = '{_STATES.FAILED}'),
    {", ".join(f"count(*) FILTER (WHERE d.status = 'failed' AND d.failure_reason = '{r}')" for r in _REASONS)},
    percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
        ORDER BY extract(epoch FROM d.acknowledged_at - n.created_at))
        FILTER (WHERE d.acknowledged_at IS NOT NULL AND d.id %% %(sample)s = 0),
    percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
        ORDER BY extract(epoch FROM d.pushed_at - n.created_at))
        FILTER (WHERE d.pushed_at IS NOT NULL AND d.id %% %(sample)s = 0)
FROM {Delivery._meta.db_table} d
JOIN {Notification._meta.db_table} n ON n.id = d.notification_id
WHERE d.created_at >= %(since)s AND d.created_at < %(now)s
"""  # noqa: S608 - identifiers and states come from the models; values are parameters


def delivery_aggregates(
    since: datetime, now: datetime, *, sample: int = 1
) -> tuple[DeliveryCounts, Percentiles, Percentiles]:
    """Counts per state and reason, and the percentiles from every `sample`-th delivery (by id).

    Sorting the values is most of a percentile's cost: a week of a million deliveries took 0.86 s with every one,
    over the dashboard's second (bench/dashboard.py). Ids are handed out in insert order, so every tenth is a
    tenth of each fan-out, and at that size still ~100,000 values (the p99 from the slowest thousand).
    """
    with connection.cursor() as cursor:
        cursor.execute(_DELIVERY_AGGREGATES, {"since": since, "now": now, "sample": sample})
        row = cursor.fetchone()
    total, pending, sent, acknowledged, read, pushed_real, pushed_simulated, failed = row[:8]
    by_reason = dict(zip(_REASONS, row[8 : 8 + len(_REASONS)], strict=True))
    to_ack, to_push = (Percentiles(*values) if values else Percentiles() for values in row[-2:])
    counts = DeliveryCounts(
        total=total,
        pending=pending,
        sent=sent,
        acknowledged=acknowledged,
        read=read,
        pushed_real=pushed_real,
        pushed_simulated=pushed_simulated,
        failed=failed,
        failed_by_reason={reason: count for reason, count in by_reason.items() if count},
    )
    return counts, to_ack, to_push


PUSH_OUTCOMES = [
    DeliveryAttempt.Outcome.ACCEPTED.value,
    DeliveryAttempt.Outcome.SIMULATED.value,
    DeliveryAttempt.Outcome.RETRY.value,
    DeliveryAttempt.Outcome.REJECTED.value,
    DeliveryAttempt.Outcome.DEVICE_GONE.value,
]


def push_outcomes(since: datetime, now: datetime) -> dict[str, int]:
    """FCM attempts in the period per outcome (accepted, simulated, retry, rejected, device_gone), zeros included."""
    counted = dict(
        DeliveryAttempt.objects.filter(channel=DeliveryAttempt.Channel.FCM, created_at__gte=since, created_at__lt=now)
        .order_by()
        .values_list("outcome")
        .annotate(count=Count("id"))
        .values_list("outcome", "count")
    )
    return {outcome: counted.get(outcome, 0) for outcome in PUSH_OUTCOMES}


_BACKLOG = f"""
SELECT
    count(*) FILTER (WHERE status = '{_STATES.PENDING}'),
    count(*) FILTER (WHERE status = '{_STATES.SENT}'),
    count(*) FILTER (WHERE next_attempt_at < %(overdue_before)s),
    min(next_attempt_at) FILTER (WHERE next_attempt_at < %(overdue_before)s)
FROM {Delivery._meta.db_table}
WHERE status IN ('{_STATES.PENDING}', '{_STATES.SENT}')
"""  # noqa: S608 - identifiers and states come from the models; values are parameters


def backlog(now: datetime) -> Backlog:
    """The open deliveries now, and how far behind the sweep is (index `delivery_status_next_attempt`)."""
    with connection.cursor() as cursor:
        cursor.execute(_BACKLOG, {"overdue_before": now - OVERDUE_AFTER})
        pending, sent, overdue, oldest_overdue_at = cursor.fetchone()
    return Backlog(pending=pending, sent=sent, overdue=overdue, oldest_overdue_at=oldest_overdue_at)


# Buckets aligned on the epoch (date_bin's origin), so a bucket keeps its bounds from one refresh to the next.
_SERIES = f"""
WITH published AS (
    SELECT date_bin(%(bucket)s, created_at, 'epoch') AS bucket, count(*) AS published
    FROM {Notification._meta.db_table}
    WHERE created_at >= %(since)s AND created_at < %(now)s
    GROUP BY 1
), delivered AS (
    SELECT date_bin(%(bucket)s, created_at, 'epoch') AS bucket,
        count(*) FILTER (WHERE status IN ('{_STATES.ACKNOWLEDGED}', '{_STATES.READ}', '{_STATES.PUSHED}'))
            AS delivered,
        count(*) FILTER (WHERE status = '{_STATES.FAILED}') AS failed
    FROM {Delivery._meta.db_table}
    WHERE created_at >= %(since)s AND created_at < %(now)s
    GROUP BY 1
)
SELECT coalesce(p.bucket, d.bucket), coalesce(p.published, 0), coalesce(d.delivered, 0), coalesce(d.failed, 0)
FROM published p FULL JOIN delivered d ON d.bucket = p.bucket
"""  # noqa: S608 - identifiers and states come from the models; values are parameters


def series(period: Period, since: datetime, now: datetime) -> list[SeriesPoint]:
    """One point per bucket from the one holding `since` to the one holding `now`, empty buckets as zeros."""
    with connection.cursor() as cursor:
        cursor.execute(_SERIES, {"bucket": period.bucket, "since": since, "now": now})  # type: ignore[dict-item]
        found = {bucket: (published, delivered, failed) for bucket, published, delivered, failed in cursor.fetchall()}
    points = []
    start = bucket_start(since, period.bucket)
    while start < now:
        published, delivered, failed = found.get(start, (0, 0, 0))
        points.append(SeriesPoint(start=start, published=published, delivered=delivered, failed=failed))
        start += period.bucket
    return points


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_start(moment: datetime, bucket: timedelta) -> datetime:
    """The start of the bucket holding `moment`, as `date_bin(bucket, moment, 'epoch')` computes it."""
    return moment - (moment - _EPOCH) % bucket


def recent_failures(since: datetime, *, limit: int = RECENT_FAILURES) -> list[Delivery]:
    """The last `limit` deliveries that failed in the period, newest first, with recipient and notification.

    In-app only ones are left out: they ended where a push would come, as meant, and nobody needs to act.
    """
    return list(
        Delivery.objects.filter(status=Delivery.Status.FAILED, failed_at__gte=since)
        .exclude(failure_reason=Delivery.FailureReason.IN_APP_ONLY)
        .select_related("recipient", "notification")
        .only(
            "id",
            "failed_at",
            "failure_reason",
            "last_error",
            "recipient__username",
            "recipient__first_name",
            "recipient__last_name",
            "notification__id",
            "notification__title",
        )
        .order_by("-failed_at")[:limit]
    )
