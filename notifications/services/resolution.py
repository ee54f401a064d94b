"""Resolution: the work a notification was about is done, so it leaves every device of its recipients.

A notification may name its `subject` (the workflow's NewTask: `task:<id>`). When that work is done
(the task decided, reassigned, its document withdrawn) or its publisher retracts it, its deliveries
that nobody read end `resolved`: a final status, so the retry sweep and the push tasks leave them
alone and no push for work already done goes out. A read delivery stays read, a failed one failed;
every recipient's connections are told all the same (a read one may still be on screen).

Each call runs in the caller's transaction (a workflow service's: the task closes together with its
notifications) as one statement, however many notifications and recipients. After the commit:
one layer message per recipient (`notifications.resolved`, with their unread count), and the
replacement push for every delivery a finished push round reached (same tag and collapse id:
the phone shows "Done: ..." instead of the task).

The race with a push in flight is settled on the delivery row (services/pushes.py): a round that
claimed the delivery before the resolution committed finds it resolved when it records its result,
notes the push as superseded and sends the replacement itself, after its own push; the resolution
sends replacements only for deliveries no round holds. One claimed after the commit finds it
resolved and sends nothing.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from notifications import dispatch, layer, metrics, selectors
from notifications.errors import NotificationError
from notifications.layer_messages import ResolvedNotification
from notifications.models import Delivery, Notification
from notifications.sql import Columns
from workflow.services import TaskCloseReason

Resolution = Notification.Resolution

# What closed a task, as the resolution of its notifications.
TASK_RESOLUTIONS: dict[str, Resolution] = {
    TaskCloseReason.APPROVED: Resolution.DONE,
    TaskCloseReason.REJECTED: Resolution.DONE,
    TaskCloseReason.REASSIGNED: Resolution.REASSIGNED,
    TaskCloseReason.WITHDRAWN: Resolution.WITHDRAWN,
}


@dataclass(frozen=True)
class ResolveResult:
    notifications: int  # notifications resolved by this call
    deliveries: int  # deliveries it closed as `resolved` (read and failed ones are left as they are)
    recipients: int  # users told


def notifications_resolve(*, subject: str, resolution: str) -> ResolveResult:
    """Resolve every notification about `subject` not resolved yet. Idempotent: a second call finds none."""
    if not subject:
        raise ValueError("a subject is needed: an empty one would match every notification without one")
    return _resolve(where_column="subject", value=subject, resolution=Resolution(resolution))


def task_subject(task_id: int) -> str:
    """The subject of a task's notifications (the workflow's NewTask): resolved when the task closes."""
    return f"task:{int(task_id)}"


def task_notifications_resolve(*, task_id: int, reason: str) -> ResolveResult:
    """A task closed: its notifications are resolved as `reason` (a workflow `TaskCloseReason`) says."""
    # A reason this module does not know yet (a new workflow transition) still resolves: the task is closed.
    resolution = TASK_RESOLUTIONS.get(reason, Resolution.DECIDED)
    return notifications_resolve(subject=task_subject(task_id), resolution=resolution)


def notification_retract(*, notification_id: uuid.UUID | str, by: AbstractBaseUser) -> ResolveResult:
    """The publisher takes back its notification. Another user's, or an unknown id, is `not_found`."""
    parsed = selectors.parse_notification_id(notification_id)
    if parsed is None or not Notification.objects.filter(pk=parsed, published_by_id=by.pk).exists():
        raise NotificationError(f"No notification {notification_id} published by you.", code="not_found")
    return _resolve(where_column="id", value=parsed, resolution=Resolution.RETRACTED)


@transaction.atomic
def _resolve(*, where_column: str, value: str | uuid.UUID, resolution: Resolution) -> ResolveResult:
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _resolve_sql(where_column),
            [now, resolution, value, Delivery.Status.RESOLVED, now, now, list(Delivery.RESOLVABLE_STATUSES), now],
        )
        rows = cursor.fetchall()
    resolved_by_user: dict[int, list[ResolvedNotification]] = defaultdict(list)
    notification_ids: set[str] = set()
    closed, to_replace = 0, []
    for recipient_id, notification_id, delivery_id, was_closed, replace_push in rows:
        notification_ids.add(str(notification_id))
        resolved_by_user[recipient_id].append(
            {"id": str(notification_id), "resolution": resolution, "resolved_at": now.isoformat()}
        )
        closed += was_closed
        if replace_push:
            to_replace.append(delivery_id)
    if not rows:
        return ResolveResult(notifications=0, deliveries=0, recipients=0)
    metrics.deliveries_finished_on_commit(state=Delivery.Status.RESOLVED, count=closed)
    layer.notifications_resolved_on_commit(
        resolved_by_user=resolved_by_user, unread_counts=selectors.unread_counts(resolved_by_user.keys())
    )
    dispatch.replacement_pushes_enqueue_on_commit(delivery_ids=to_replace)
    return ResolveResult(notifications=len(notification_ids), deliveries=closed, recipients=len(resolved_by_user))


def _resolve_sql(where_column: str) -> str:
    """One statement: resolve the notifications, close their resolvable deliveries, and list every delivery.

    Each row: recipient, notification, delivery, whether this statement closed it, whether the resolution
    replaces its push (a push round reached a device and no round holds the delivery now: one that does
    replaces its own push, see services/pushes.py). The final SELECT sees the rows as they were before
    (one snapshot): recipients, notifications and ids do not change.
    """
    notification, delivery = Columns(Notification), Columns(Delivery)
    column = getattr(notification, where_column)
    return f"""
        WITH resolved_notification AS (
            UPDATE {notification.table}
               SET {notification.resolved_at} = %s, {notification.resolution} = %s
             WHERE {column} = %s AND {notification.resolved_at} IS NULL
         RETURNING {notification.id}
        ), closed AS (
            UPDATE {delivery.table} d
               SET {delivery.status} = %s, {delivery.resolved_at} = %s, {delivery.next_attempt_at} = NULL,
                   {delivery.updated_at} = %s
              FROM resolved_notification n
             WHERE d.{delivery.notification} = n.{notification.id} AND d.{delivery.status} = ANY(%s)
         RETURNING d.{delivery.id},
                   d.{delivery.push_attempts} > 0
                   AND (d.{delivery.push_claimed_by} = '' OR d.{delivery.push_claimed_until} <= %s) AS replace_push
        )
        SELECT d.{delivery.recipient}, d.{delivery.notification}, d.{delivery.id},
               closed.{delivery.id} IS NOT NULL, COALESCE(closed.replace_push, FALSE)
          FROM {delivery.table} d
          JOIN resolved_notification n ON n.{notification.id} = d.{delivery.notification}
          LEFT JOIN closed ON closed.{delivery.id} = d.{delivery.id}
         ORDER BY d.{delivery.recipient}, d.{delivery.id}
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
