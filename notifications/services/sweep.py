"""The retry sweep: Celery beat runs it every NOTIFY_SWEEP_INTERVAL seconds.

Every open delivery carries `next_attempt_at`, the time by which something
should have happened to it. The sweep takes the ones whose time has come:

- expired notifications fail `expired` (they are never pushed);
- deliveries sent over the WebSocket but not acknowledged are sent again to
  recipients who are still online, the wait doubling after each send, up to
  NOTIFY_MAX_WS_ATTEMPTS sends;
- after that, or when the recipient is offline, or when a push round is due
  (FCM retry, or a push task that died), a push task is queued (for an in-app
  only notification, `push_allowed` off, that task closes the delivery as
  failed `in_app_only` without FCM: services/pushes.py);
- deliveries left `pending` by a process that died between commit and dispatch
  (publish gives them NOTIFY_DISPATCH_GRACE seconds) are dispatched again the same way.

Two things stretch a wait, never past twice the documented bound: a hub process
that is behind (its clients' acks come late: `_hub_behind`), and a presence
registry just emptied by a Redis restart (a user who looks offline may be
connected: their push waits until the registry is complete).

Rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED and their
`next_attempt_at` is moved past the step being taken before the transaction
commits, so two sweeps running at once never take the same delivery; the
sends and task messages leave only after that commit.
"""

import logging
from collections import Counter
from datetime import timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications import dispatch, metrics, presence
from notifications.models import Delivery
from notifications.services.deliveries import (
    deliveries_fail,
    deliveries_log_offline,
    deliveries_mark_resent,
    websocket_fallback_bound,
)

logger = logging.getLogger(__name__)

SWEEP_BATCH_SIZE = 500
SWEEP_MAX_BATCHES = 20
# The shortest wait for a complete presence registry (after a Redis restart): not every sweep of the interval.
MIN_HOLD_SECONDS = 0.5


def deliveries_sweep(*, batch_size: int = SWEEP_BATCH_SIZE) -> dict[str, int]:
    """Take every due delivery one step further; returns counts (`expired`, `resent`, `push_queued`)."""
    report: Counter[str] = Counter()
    hub_behind = _hub_behind()
    batch_sizes: list[int] = []
    lag = timedelta()  # how late the oldest due delivery was (each batch has committed when the next starts)
    for _ in range(SWEEP_MAX_BATCHES):
        claimed, batch_lag = _sweep_batch(batch_size=batch_size, report=report, hub_behind=hub_behind)
        batch_sizes.append(claimed)
        lag = max(lag, batch_lag)
        if claimed < batch_size:
            break
    metrics.record_sweep(lag_seconds=lag.total_seconds(), batch_sizes=batch_sizes, steps=report)
    if done := {step: count for step, count in sorted(report.items()) if count}:
        # One line when it did something; an idle sweep (most of them) says nothing.
        steps = ", ".join(f"{step.replace('_', ' ')} {count}" for step, count in done.items())
        logger.info("sweep: %s (the oldest due %.1f s late)", steps, lag.total_seconds())
    return dict(report)


def _hub_behind() -> timedelta:
    """How much longer than usual acks may take now: how far behind the hub is, at most one fallback bound.

    A hub process that is behind (a reconnect storm, a burst) writes its clients' frames and reads their acks
    late: resending then would only add to its backlog (every resend of an unacknowledged notification is more
    work for the process that is behind), and pushing would push clients that have it. So while it is behind,
    the WebSocket waits stretch by as much; never by more than `websocket_fallback_bound()`, so a push still
    follows within twice the documented bound.
    """
    try:
        seconds = presence.hub_behind_seconds()
    except redis.RedisError:  # Redis away: presence lookups fail too, and the sweep with them
        return timedelta()
    return min(timedelta(seconds=seconds), websocket_fallback_bound())


def _due(now, *, hub_behind: timedelta) -> Q:
    # Publish sets next_attempt_at; the fallback catches rows written without one.
    grace = timedelta(seconds=settings.NOTIFY_DISPATCH_GRACE)
    stale_pending = Q(next_attempt_at__isnull=True, created_at__lte=now - grace)
    awaiting_ack = Q(status=Delivery.Status.SENT, push_attempts=0)
    on_time = ~awaiting_ack & Q(next_attempt_at__lte=now)
    ack_wait_over = awaiting_ack & Q(next_attempt_at__lte=now - hub_behind)
    return Q(status__in=Delivery.OPEN_STATUSES) & (on_time | ack_wait_over | stale_pending)


@transaction.atomic
def _sweep_batch(*, batch_size: int, report: Counter, hub_behind: timedelta) -> tuple[int, timedelta]:
    """Claim and move on one batch of due deliveries; returns how many, and how late the oldest of them was."""
    now = timezone.now()
    due = list(
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("notification")
        .filter(_due(now, hub_behind=hub_behind))
        .order_by("next_attempt_at", "id")[:batch_size]
    )
    if not due:
        return 0, timedelta()
    grace = timedelta(seconds=settings.NOTIFY_DISPATCH_GRACE)
    lag = max(now - (delivery.next_attempt_at or delivery.created_at + grace) for delivery in due)

    expired = [delivery for delivery in due if delivery.notification.is_expired(now)]
    live = [delivery for delivery in due if not delivery.notification.is_expired(now)]
    websocket_phase = [
        delivery
        for delivery in live
        if delivery.push_attempts == 0 and delivery.attempts < settings.NOTIFY_MAX_WS_ATTEMPTS
    ]
    found = presence.lookup({delivery.recipient_id for delivery in websocket_phase})
    resend = [delivery for delivery in websocket_phase if delivery.recipient_id in found.connection_counts]
    resend_ids = {delivery.pk for delivery in resend}
    offline = [delivery.pk for delivery in websocket_phase if delivery.pk not in resend_ids]
    held = []
    if not found.complete:
        # Just after a Redis restart a connected user may look offline: push nobody who might be connected
        # until the registry is complete (presence.Presence); this is not an attempt.
        held, offline = offline, []
        Delivery.objects.filter(pk__in=held).update(
            next_attempt_at=now + timedelta(seconds=max(found.incomplete_for, MIN_HOLD_SECONDS)), updated_at=now
        )
    to_push = [delivery.pk for delivery in live if delivery.pk not in resend_ids and delivery.pk not in held]
    deliveries_log_offline(delivery_ids=offline)

    if expired:
        deliveries_fail(delivery_ids=[delivery.pk for delivery in expired], reason=Delivery.FailureReason.EXPIRED)
    # The claims: no other sweep sees these rows again until their next step has had time to happen. A resend
    # is recorded here, in the claim's transaction (its wait doubled); the frames leave after the commit.
    deliveries_mark_resent(delivery_ids=resend_ids)
    if to_push:
        Delivery.objects.filter(pk__in=to_push).update(
            next_attempt_at=now + timedelta(seconds=settings.NOTIFY_PUSH_LEASE), updated_at=now
        )
    dispatch.deliveries_resend_on_commit(deliveries=resend)
    dispatch.pushes_enqueue_on_commit(delivery_ids=to_push)

    report.update(expired=len(expired), resent=len(resend), push_queued=len(to_push))
    if held:
        report.update(held=len(held))
    return len(due), lag
