"""Retention: the pruner that keeps the tables from growing without bound (Celery beat, every
NOTIFY_RETENTION_INTERVAL seconds, on the sweep queue).

What goes:
- a settled delivery (any status but `Delivery.OPEN_STATUSES`) NOTIFY_RETENTION_DAYS after it last changed
  (`updated_at`: when it settled, or a late acknowledgement or read after that), with its attempt log;
- a notification NOTIFY_RETENTION_DAYS after it was published, once none of its deliveries is left (one that
  reached nobody included), with its idempotency key;
- an idempotency key NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS after it was claimed (publishing ignores it from then on,
  deleted or not: `idempotency_keys_expired_before`).
An open delivery is never deleted, however old: the sweep settles it first, and its notification stays with it.
NOTIFY_RETENTION_DAYS=0 keeps deliveries and notifications forever; keys expire all the same.

Publishing, sending and acknowledging write these tables all the time, so the pruner never holds their locks
for long: each batch is one statement, in a transaction of its own, that deletes at most RETENTION_BATCH_SIZE
rows (and what refers to them), claimed with FOR UPDATE SKIP LOCKED so a row an ack or a sweep holds is left
for the next run; and a run starts no new batch after RETENTION_TIME_BUDGET seconds, so a backlog (the first
run over a year of history) is worked off over several runs. The run shares the sweeper's process with the
retry sweep: that budget is also about the longest it keeps a sweep waiting. Each kind of row is found oldest
first through an index: settled deliveries through a partial index on `updated_at` that open rows stay out of.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from notifications.models import ActionPerformance, Delivery, DeliveryAttempt, IdempotencyKey, Notification
from notifications.services.publish_request import idempotency_keys_expired_before
from notifications.sql import Columns

logger = logging.getLogger(__name__)
SelectSql = tuple[str, Sequence[Any]]  # a statement's SQL and its parameters

RETENTION_BATCH_SIZE = 2_000
RETENTION_TIME_BUDGET = 2.0  # seconds of batches per run


@dataclass(frozen=True)
class _Prunable:
    """One kind of row past its retention: how to pick a batch of them, and the tables a batch is deleted from.

    `select(batch_size)` gives the SQL and parameters of a SELECT of at most `batch_size` ids, oldest first,
    locked FOR UPDATE SKIP LOCKED. `deletes` holds (report key, model, the column holding the id): rows that
    refer to the pruned ones, then the pruned rows themselves (last: its count is the batch's size).
    """

    select: Callable[[int], SelectSql]
    deletes: tuple[tuple[str, type[models.Model], str], ...]


def retention_prune(
    *, batch_size: int = RETENTION_BATCH_SIZE, time_budget: float = RETENTION_TIME_BUDGET
) -> dict[str, int]:
    """Delete what is past its retention, batch by batch, until done or `time_budget` seconds have gone by.

    Returns how many rows of each kind went (`idempotency_keys`, `delivery_attempts`, `deliveries`,
    `notifications`; only the kinds it deleted) and logs them in one line, only when it deleted something.
    """
    deadline = time.monotonic() + time_budget
    report: Counter[str] = Counter()
    finished = True
    for prunable in _prunables(timezone.now()):
        if not _delete_in_batches(prunable, batch_size=batch_size, deadline=deadline, report=report):
            finished = False
            break
    deleted = {kind: count for kind, count in report.items() if count}
    if deleted:
        logger.info(
            "retention: deleted %s%s",
            ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in deleted.items()),
            "" if finished else "; out of time, the next run goes on",
        )
    return deleted


def _prunables(now: datetime) -> list[_Prunable]:
    keys = _Prunable(
        select=_oldest_first(IdempotencyKey.objects.filter(created_at__lt=idempotency_keys_expired_before())),
        deletes=(("idempotency_keys", IdempotencyKey, "id"),),
    )
    if not settings.NOTIFY_RETENTION_DAYS:
        return [keys]
    cutoff = now - timedelta(days=settings.NOTIFY_RETENTION_DAYS)
    settled_deliveries = _Prunable(
        # The partial index `delivery_settled_updated` has this exclude for its condition.
        select=_oldest_first(
            Delivery.objects.exclude(status__in=Delivery.OPEN_STATUSES).filter(updated_at__lt=cutoff),
            by="updated_at",
        ),
        deletes=(("delivery_attempts", DeliveryAttempt, "delivery"), ("deliveries", Delivery, "id")),
    )
    notifications_left_undelivered = _Prunable(
        select=lambda batch_size: _notifications_without_deliveries(cutoff=cutoff, batch_size=batch_size),
        # A key lives shorter than a notification (the settings check it), so this only takes expired ones.
        deletes=(
            ("idempotency_keys", IdempotencyKey, "notification"),
            ("action_performances", ActionPerformance, "notification"),
            ("notifications", Notification, "id"),
        ),
    )
    return [keys, settled_deliveries, notifications_left_undelivered]


def _oldest_first(rows: QuerySet, *, by: str = "created_at") -> Callable[[int], SelectSql]:
    def select(batch_size: int) -> SelectSql:
        batch = rows.order_by(by).select_for_update(skip_locked=True).values("pk")[:batch_size]
        return batch.query.sql_with_params()

    return select


def _notifications_without_deliveries(*, cutoff: datetime, batch_size: int) -> SelectSql:
    """Notifications published before `cutoff` that no delivery is left of, oldest first.

    Written as a lateral LIMIT 1 rather than NOT EXISTS: the planner turns NOT EXISTS into an anti-join and, its
    statistics lagging behind mass deletes, may hash the whole deliveries table for each batch; this looks up
    each candidate in the (notification, recipient) index and stops at the batch's size.
    """
    notification, delivery = Columns(Notification), Columns(Delivery)
    sql = f"""
        SELECT n.{notification.id}
          FROM {notification.table} n
          LEFT JOIN LATERAL (
               SELECT true FROM {delivery.table} d WHERE d.{delivery.notification} = n.{notification.id} LIMIT 1
          ) AS delivered(found) ON true
         WHERE n.{notification.created_at} < %s AND delivered.found IS NULL
         ORDER BY n.{notification.created_at}
         LIMIT %s
           FOR UPDATE OF n SKIP LOCKED
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    return sql, [cutoff, batch_size]


def _delete_in_batches(prunable: _Prunable, *, batch_size: int, deadline: float, report: Counter) -> bool:
    """Delete batches until one comes back short (True: none left) or the time is up (False)."""
    while True:
        if _delete_batch(prunable, batch_size=batch_size, report=report) < batch_size:
            return True
        if time.monotonic() >= deadline:
            return False


def _delete_batch(prunable: _Prunable, *, batch_size: int, report: Counter) -> int:
    """One statement in its own transaction: claim up to `batch_size` rows, delete them and what refers to them."""
    with transaction.atomic(), connection.cursor() as cursor:
        batch_sql, params = prunable.select(batch_size)  # in the transaction: Django refuses FOR UPDATE outside
        deletes = []
        for number, (_, model, column) in enumerate(prunable.deletes):
            table = Columns(model)
            deletes.append(
                f"deleted_{number} AS (DELETE FROM {table.table}"  # noqa: S608 - identifiers from _meta
                f" WHERE {getattr(table, column)} IN (SELECT id FROM batch) RETURNING 1)"
            )
        counts = ", ".join(f"(SELECT count(*) FROM deleted_{n})" for n in range(len(deletes)))  # noqa: S608
        # Django's foreign keys are checked at commit (DEFERRABLE INITIALLY DEFERRED): the order of the deletes
        # within the statement does not matter, only that the referring rows go in the same transaction.
        sql = f"WITH batch(id) AS ({batch_sql}), {', '.join(deletes)} SELECT {counts}"
        cursor.execute(sql, params)
        row = cursor.fetchone()
    for (kind, _, _), count in zip(prunable.deletes, row, strict=True):
        report[kind] += count
    return row[-1]
