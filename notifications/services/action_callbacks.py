"""Calling a publisher back when a recipient performed one of its notification's actions.

One signed JSON POST per performance to the publisher's `ActionCallback.url`, from a Celery task
(notifications/tasks.py) that retries with backoff until the publisher answers 2xx or
NOTIFY_ACTION_CALLBACK_MAX_ATTEMPTS calls have failed; each attempt is counted on the performance row, which
ends `delivered` or `failed`. A call may arrive twice (a worker dies after the POST, before the commit):
`idempotencyKey` is the same on every call for one performance.

A call queued after the commit can be lost (the process dies in between, the broker is down): a pending
performance's `callback_due_at` says when a task should have tried it at the latest, and
`action_callbacks_resume` (Celery beat, on the sweep queue) queues those nobody tried again. Every attempt
moves it on by `callback_lease()`, longer than the task's own retries wait, so a call retrying normally is
never queued twice.

The signature: `X-NotifyHub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.
A publisher recomputes it over the raw body, compares in constant time, and refuses an old `t`.
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications import dispatch
from notifications.models import ActionCallback, ActionPerformance

SIGNATURE_HEADER = "X-NotifyHub-Signature"
CallbackStatus = ActionPerformance.CallbackStatus


class CallbackNotDelivered(Exception):
    """The publisher did not answer 2xx this time; the task tries again later."""


def callback_lease() -> timedelta:
    """How long a pending call may go untried before the resume sweep queues it again: a task's longest wait
    between two attempts (NOTIFY_ACTION_CALLBACK_MAX_BACKOFF) and a call's timeout, twice over."""
    return timedelta(
        seconds=2 * (settings.NOTIFY_ACTION_CALLBACK_MAX_BACKOFF + settings.NOTIFY_ACTION_CALLBACK_TIMEOUT)
    )


@transaction.atomic
def action_callbacks_resume(*, batch_size: int = 100) -> int:
    """Queue again the calls nobody tried by their `callback_due_at` (their task was lost); how many."""
    now = timezone.now()
    due = list(
        ActionPerformance.objects.filter(callback_status=CallbackStatus.PENDING, callback_due_at__lte=now)
        .order_by("callback_due_at")
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:batch_size]
    )
    ActionPerformance.objects.filter(pk__in=due).update(callback_due_at=now + callback_lease())
    for performance_id in due:
        dispatch.action_callback_enqueue_on_commit(performance_id=performance_id)
    return len(due)


def callback_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def callback_body(performance: ActionPerformance) -> bytes:
    """What the publisher receives: which action, on what, by whom (camelCase JSON, like a SignalR argument)."""
    user = performance.user
    return json.dumps(
        {
            "notificationId": str(performance.notification_id),
            "event": performance.notification.event,
            "subject": performance.notification.subject,
            "action": performance.action,
            "comment": performance.comment,
            "userId": user.pk,
            "username": user.get_username(),
            "performedAt": performance.performed_at.isoformat(),
            "idempotencyKey": f"action-{performance.pk}",
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def action_callback_deliver(*, performance_id: int) -> str:
    """Make one call for a pending performance; its outcome in words. Raises `CallbackNotDelivered` to be retried.

    Idempotent: a performance no longer pending (delivered, failed, or gone) is not called about again.
    """
    performance = (
        ActionPerformance.objects.select_related("notification", "user")
        .filter(pk=performance_id, callback_status=CallbackStatus.PENDING)
        .first()
    )
    if performance is None:
        return "not pending"
    callback = ActionCallback.objects.filter(publisher_id=performance.notification.published_by_id).first()
    if callback is None:
        ActionPerformance.objects.filter(pk=performance_id).update(
            callback_status=CallbackStatus.FAILED,
            callback_last_error="The publisher has no action callback any more.",
            callback_due_at=None,
        )
        return "failed: no callback"
    body = callback_body(performance)
    timestamp = int(time.time())
    try:
        response = requests.post(
            callback.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: callback_signature(secret=callback.secret, timestamp=timestamp, body=body),
            },
            timeout=settings.NOTIFY_ACTION_CALLBACK_TIMEOUT,
            allow_redirects=False,
        )
        error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}: {response.text[:200]}"
    except requests.RequestException as exception:
        error = f"{type(exception).__name__}: {exception}"[:500]
    attempts, status = _attempt_record(performance_id, error=error)
    if status == CallbackStatus.PENDING:
        raise CallbackNotDelivered(error)
    return "delivered" if status == CallbackStatus.DELIVERED else f"failed after {attempts} attempts: {error}"


@transaction.atomic
def _attempt_record(performance_id: int, *, error: str) -> tuple[int, str]:
    """Count one call and how it went: delivered, failed for good after the last attempt, or still pending."""
    performance = ActionPerformance.objects.select_for_update().get(pk=performance_id)
    now = timezone.now()
    performance.callback_attempts += 1
    performance.callback_last_error = error
    performance.callback_due_at = now + callback_lease()  # the task's own retry comes sooner
    if not error:
        performance.callback_status = CallbackStatus.DELIVERED
        performance.callback_delivered_at = now
    elif performance.callback_attempts >= settings.NOTIFY_ACTION_CALLBACK_MAX_ATTEMPTS:
        performance.callback_status = CallbackStatus.FAILED
    if performance.callback_status != CallbackStatus.PENDING:
        performance.callback_due_at = None
    performance.save(
        update_fields=[
            "callback_attempts",
            "callback_last_error",
            "callback_status",
            "callback_delivered_at",
            "callback_due_at",
        ]
    )
    return performance.callback_attempts, performance.callback_status
