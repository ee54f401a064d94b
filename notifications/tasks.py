"""Celery tasks of the notifications domain: thin wrappers that take ids and call one service.

All are idempotent (the broker redelivers after a crash: acks_late, reject_on_worker_lost).
"""

from __future__ import annotations  # celery-types makes Task generic; Celery's Task takes no subscript at run time

from celery import Task, shared_task
from django.conf import settings

from notifications.dispatch import ACTION_CALLBACK_TASK, PUSH_TASK, REPLACEMENT_PUSH_TASK
from notifications.services.action_callbacks import (
    CallbackNotDelivered,
    action_callback_deliver,
    action_callbacks_resume,
)
from notifications.services.pushes import delivery_push, delivery_push_replacement
from notifications.services.retention import retention_prune
from notifications.services.sweep import deliveries_sweep

# Killed well before its lease ends, so the sweep's next round never overlaps a stuck one.
PUSH_TIME_LIMIT = settings.NOTIFY_PUSH_LEASE * 0.8


# celery-types wants time_limit an int; Celery takes seconds as a float.
@shared_task(name=PUSH_TASK, bind=True, ignore_result=True, time_limit=PUSH_TIME_LIMIT)  # type: ignore[call-overload, untyped-decorator]
def push_delivery(self: Task[[int], str], delivery_id: int) -> str:
    """Push one delivery through FCM (queued at publish for offline recipients, and by the sweep)."""
    # The task id names the claim: a redelivery of this same message resumes it.
    return delivery_push(delivery_id=delivery_id, claim_id=self.request.id)


@shared_task(name=REPLACEMENT_PUSH_TASK, ignore_result=True, time_limit=PUSH_TIME_LIMIT)  # type: ignore[call-overload, untyped-decorator]
def push_resolution(delivery_id: int) -> str:
    """Replace a resolved delivery's push on the devices that got it (queued by a resolution)."""
    return delivery_push_replacement(delivery_id=delivery_id)


# Backoff 1, 2, 4 ... s (jittered), at most NOTIFY_ACTION_CALLBACK_MAX_BACKOFF: far below the broker's 1 h visibility
# timeout. The attempts are counted on the row, which ends the retries (max_retries is only a backstop).
@shared_task(
    name=ACTION_CALLBACK_TASK,
    ignore_result=True,
    autoretry_for=(CallbackNotDelivered,),
    retry_backoff=1,
    retry_backoff_max=settings.NOTIFY_ACTION_CALLBACK_MAX_BACKOFF,
    retry_jitter=True,
    max_retries=settings.NOTIFY_ACTION_CALLBACK_MAX_ATTEMPTS,
)
def call_action_back(performance_id: int) -> str:
    """POST a performed action to its publisher's callback, signed (queued when a recipient performs it)."""
    return action_callback_deliver(performance_id=performance_id)


@shared_task(name="notifications.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> dict[str, int]:
    """Retry, push or expire every due delivery (Celery beat, every NOTIFY_SWEEP_INTERVAL seconds)."""
    return deliveries_sweep()


@shared_task(name="notifications.resume_action_callbacks", ignore_result=True)
def resume_action_callbacks() -> int:
    """Queue again the publisher callbacks whose task was lost (Celery beat, every minute)."""
    return action_callbacks_resume()


@shared_task(name="notifications.prune_retention", ignore_result=True)
def prune_retention() -> dict[str, int]:
    """Delete what is past its retention (Celery beat, every NOTIFY_RETENTION_INTERVAL seconds)."""
    return retention_prune()
