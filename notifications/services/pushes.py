"""The FCM fallback for one delivery: claim it, push to the recipient's devices, record what happened.

A push round sends to every active device of the recipient that has no settled
FCM outcome for this delivery yet (accepted, simulated, rejected, gone), so a
retried or redelivered round never pushes a device that FCM already accepted.
The delivery settles when no device is left to retry:

- pushed, if FCM accepted it for at least one device (`push_simulated` with the log backend);
- failed `push_rejected` if FCM refused it (INVALID_ARGUMENT, ...), with FCM's reason;
- failed `no_devices` if the recipient has no active device (or every token was dead);
- failed `push_unavailable` if temporary errors outlast NOTIFY_MAX_PUSH_ATTEMPTS rounds.

Temporary errors leave it open with `next_attempt_at` after an exponential,
jittered backoff (never before FCM's Retry-After): the sweep queues the next
round, so long delays live in the database, not in broker countdowns.

Race safety: a round first claims the delivery (row lock, then a lease in
`push_claimed_by/_until`) and only then talks to FCM, outside any transaction,
so acknowledgements never wait for Google. Results are written only if the
delivery is still open and still ours: an ack that lands first wins (nothing is
sent), an ack that lands during the push wins the status (the push is still
logged), an ack after the push is recorded by `delivery_acknowledge` without
reopening anything. A task killed mid-round is redelivered by Celery with the
same id and resumes its own claim; any other task waits for the lease to end,
and the task's time limit is shorter than the lease (see tasks.py).

Before it claims, a round asks the recipient's preferences (notifications/preferences.py `push_decision`):
push turned off ends the delivery `failed` / `push_off` (it stays in the inbox); inside their quiet hours the
push is held (`next_attempt_at` moves to the end of the window, a `deferred` attempt says why) and the sweep
queues it when they end.

A resolution (services/resolution.py) closes a delivery as `resolved`, a final
status, so no round claims it afterwards. A round that claimed it before, and
finds it resolved when it records its result, logs its push `superseded` and
sends the replacement push itself, right after its own, so the replacement
always arrives second (`delivery_push_replacement`). Either the push is sent
and then replaced, or it is never sent.
"""

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from notifications import layer, metrics, push
from notifications.layer_messages import ResolvedNotification
from notifications.models import Delivery, DeliveryAttempt, Device
from notifications.preferences import PushAction, push_decision, push_settings_for
from notifications.services.deliveries import deliveries_fail

logger = logging.getLogger(__name__)
Outcome = DeliveryAttempt.Outcome
FailureReason = Delivery.FailureReason
PUSH_RETRY_MAX_DELAY = timedelta(minutes=15)


@dataclass(frozen=True)
class _Claim:
    delivery: Delivery
    devices: list[Device]


def delivery_push(*, delivery_id: int, claim_id: str | None = None) -> str:
    """Run one push round for a delivery; returns what happened, for logs (`pushed`, `retry`, `failed: ...`, ...).

    `claim_id` names the caller (the Celery task id, so a redelivered task resumes its own claim).
    """
    claim_id = claim_id or uuid.uuid4().hex
    claim = _claim(delivery_id=delivery_id, claim_id=claim_id)
    if not isinstance(claim, _Claim):
        return claim
    payload = layer.notification_payload(claim.delivery.notification)
    try:
        results = push.send_push(payload=payload, devices=claim.devices)
    except Exception as error:
        # A bug or a broken credentials file: record it on every device (the admin shows it) and let
        # the retry rounds run out, rather than leave the delivery claimed and silent.
        logger.exception("push of delivery %s failed", delivery_id)
        results = [
            push.PushResult(device.pk, Outcome.RETRY, f"{type(error).__name__}: {error}", "PUSH_BACKEND_ERROR")
            for device in claim.devices
        ]
    metrics.record_push_results(
        backend=settings.NOTIFY_PUSH_BACKEND, results=[(result.outcome, result.code) for result in results]
    )
    outcome = _record(delivery=claim.delivery, claim_id=claim_id, results=results)
    if outcome == SUPERSEDED:
        return f"{outcome}; {delivery_push_replacement(delivery_id=delivery_id)}"
    return outcome


SUPERSEDED = "superseded: resolved while pushing"


def delivery_push_replacement(*, delivery_id: int) -> str:
    """Replace a resolved delivery's push on every device FCM took it for (and not replaced yet); for logs.

    One try: the replacement only tidies a phone's tray (the hub has told every connection already), so a
    device FCM cannot reach now is left alone rather than retried; the attempt log says so.
    """
    delivery = (
        Delivery.objects.select_related("notification").filter(pk=delivery_id, status=Delivery.Status.RESOLVED).first()
    )
    resolved_at = delivery.notification.resolved_at if delivery is not None else None
    if delivery is None or resolved_at is None:
        return "skipped: not resolved"
    attempts = DeliveryAttempt.objects.filter(delivery_id=delivery_id, channel=DeliveryAttempt.Channel.FCM)
    reached = attempts.filter(outcome__in=DeliveryAttempt.DELIVERED_PUSH_OUTCOMES).values("device_id")
    replaced = attempts.filter(outcome=Outcome.REPLACED, device__isnull=False).values("device_id")
    devices = list(Device.objects.filter(pk__in=reached, active=True).exclude(pk__in=replaced).order_by("pk"))
    if not devices:
        return "skipped: no device shows it"
    notification = delivery.notification
    resolved: ResolvedNotification = {
        "id": str(notification.pk),
        "resolution": notification.resolution,
        "resolved_at": resolved_at.isoformat(),
    }
    try:
        results = push.send_resolution_push(
            payload=layer.notification_payload(notification), resolved=resolved, devices=devices
        )
    except Exception as error:
        logger.exception("replacement push of delivery %s failed", delivery_id)
        results = [push.PushResult(device.pk, Outcome.RETRY, f"{type(error).__name__}: {error}") for device in devices]
    metrics.record_push_results(
        backend=settings.NOTIFY_PUSH_BACKEND, results=[(result.outcome, result.code) for result in results]
    )
    now = timezone.now()
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery_id=delivery_id,
            channel=DeliveryAttempt.Channel.FCM,
            outcome=Outcome.REPLACED if result.outcome in DeliveryAttempt.DELIVERED_PUSH_OUTCOMES else result.outcome,
            device_id=result.device_id,
            error=f"replacement push: {result.error}" if result.error else "",
            created_at=now,
        )
        for result in results
    )
    _deactivate_gone_devices(results)
    replaced_count = sum(result.outcome in DeliveryAttempt.DELIVERED_PUSH_OUTCOMES for result in results)
    return f"replaced on {replaced_count} of {len(results)} device(s)"


def push_retry_delay(push_attempts: int) -> timedelta:
    """Exponential backoff with jitter: half of base * 2**(n-1) fixed, half random, capped at 15 minutes."""
    ceiling = min(settings.NOTIFY_PUSH_RETRY_DELAY * 2 ** (push_attempts - 1), PUSH_RETRY_MAX_DELAY.total_seconds())
    return timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 (jitter, not crypto)


@transaction.atomic
def _claim(*, delivery_id: int, claim_id: str) -> _Claim | str:
    now = timezone.now()
    delivery = (
        Delivery.objects.select_for_update(of=("self",))
        .select_related("notification", "recipient")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return "skipped: no such delivery"
    if delivery.status not in Delivery.OPEN_STATUSES:
        return f"skipped: already {delivery.status}"
    if delivery.push_claimed_until and delivery.push_claimed_until > now and delivery.push_claimed_by != claim_id:
        return "skipped: another push task owns it"
    if delivery.notification.is_expired(now):
        deliveries_fail(delivery_ids=[delivery.pk], reason=FailureReason.EXPIRED)
        return "failed: expired"
    if not delivery.recipient.is_active:  # deactivated by a path that sent no signal (e.g. a bulk update)
        deliveries_fail(delivery_ids=[delivery.pk], reason=FailureReason.RECIPIENT_INACTIVE)
        return "failed: recipient_inactive"
    if not delivery.notification.push_allowed:
        # In-app only (e.g. TaskDelegated): every way to a push (at publish, the sweep, "retry now") ends here, so
        # the delivery closes without FCM. Still replayed on the next connection, and an ack there supersedes it.
        deliveries_fail(delivery_ids=[delivery.pk], reason=FailureReason.IN_APP_ONLY)
        return "failed: in_app_only"
    # Decided now, not at publish: a choice made since (push off, quiet hours) holds for every push to come.
    [preferences] = push_settings_for(user_ids=[delivery.recipient_id], event=delivery.notification.event).values()
    decision = push_decision(notification=delivery.notification, preferences=preferences, now=now)
    if decision.action is PushAction.DROP:
        deliveries_fail(delivery_ids=[delivery.pk], reason=FailureReason.PUSH_OFF, error=decision.reason)
        return f"failed: {FailureReason.PUSH_OFF}"
    if decision.action is PushAction.DEFER:
        assert decision.until is not None  # a deferral always says until when
        return _defer(delivery=delivery, until=decision.until, reason=decision.reason, now=now)

    settled_device_ids = DeliveryAttempt.objects.filter(
        delivery=delivery,
        channel=DeliveryAttempt.Channel.FCM,
        outcome__in=DeliveryAttempt.SETTLED_PUSH_OUTCOMES,
        device__isnull=False,  # a deleted device leaves NULL, and NOT IN (..., NULL) excludes everything
    ).values("device_id")
    devices = list(
        Device.objects.filter(user_id=delivery.recipient_id, active=True)
        .exclude(pk__in=settled_device_ids)
        .order_by("pk")
    )
    if not devices:
        return _settle(delivery=delivery, claim_id=None, now=now, still_failing=[])
    if delivery.push_attempts >= settings.NOTIFY_MAX_PUSH_ATTEMPTS:  # rounds ran out (e.g. their workers died)
        still_failing = [push.PushResult(device.pk, Outcome.RETRY, delivery.last_error) for device in devices]
        return _settle(delivery=delivery, claim_id=None, now=now, still_failing=still_failing)

    lease_end = now + timedelta(seconds=settings.NOTIFY_PUSH_LEASE)
    Delivery.objects.filter(pk=delivery.pk).update(
        push_claimed_by=claim_id,
        push_claimed_until=lease_end,
        next_attempt_at=lease_end,  # if this task dies for good, the sweep looks again then
        push_attempts=F("push_attempts") + 1,
        updated_at=now,
    )
    delivery.push_attempts += 1
    return _Claim(delivery=delivery, devices=devices)


def _defer(*, delivery: Delivery, until: datetime, reason: str, now: datetime) -> str:
    """Hold the push until `until` (the end of quiet hours): the sweep queues it then, and a resolution meanwhile
    closes the delivery, so it is never pushed. Not a round: `push_attempts` stays as it was."""
    if delivery.notification.expires_at:  # so the sweep fails it as expired on time
        until = min(until, delivery.notification.expires_at)
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=until, push_claimed_by="", push_claimed_until=None, updated_at=now
    )
    DeliveryAttempt.objects.create(
        delivery_id=delivery.pk,
        channel=DeliveryAttempt.Channel.FCM,
        outcome=Outcome.DEFERRED,
        error=reason,
        created_at=now,
    )
    return f"deferred until {until.isoformat()}"


@transaction.atomic
def _record(*, delivery: Delivery, claim_id: str, results: list[push.PushResult]) -> str:
    now = timezone.now()
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery_id=delivery.pk,
            channel=DeliveryAttempt.Channel.FCM,
            outcome=result.outcome,
            device_id=result.device_id,
            error=result.error,
            created_at=now,
        )
        for result in results
    )
    _deactivate_gone_devices(results)
    still_failing = [result for result in results if result.outcome == Outcome.RETRY]
    if still_failing and delivery.push_attempts < settings.NOTIFY_MAX_PUSH_ATTEMPTS:
        return _schedule_retry(
            delivery=delivery, claim_id=claim_id, now=now, still_failing=still_failing, results=results
        )
    return _settle(delivery=delivery, claim_id=claim_id, now=now, still_failing=still_failing)


def _deactivate_gone_devices(results: list[push.PushResult]) -> None:
    for result in results:
        if result.outcome == Outcome.DEVICE_GONE:
            # FCM says the token is dead: never push to it again (the app registers a new one).
            Device.objects.filter(pk=result.device_id, active=True).update(
                active=False, deactivated_reason=result.code.lower()
            )


def _schedule_retry(
    *, delivery: Delivery, claim_id: str, now: datetime, still_failing: list, results: list[push.PushResult]
) -> str:
    delay = push_retry_delay(delivery.push_attempts)
    retry_after = max((result.retry_after or 0 for result in still_failing), default=0)
    delay = max(delay, timedelta(seconds=retry_after))
    next_attempt_at = now + delay
    if delivery.notification.expires_at:  # so the sweep fails it as expired on time
        next_attempt_at = min(next_attempt_at, delivery.notification.expires_at)
    changed = _still_ours(delivery.pk, claim_id).update(
        next_attempt_at=next_attempt_at,
        last_error=still_failing[0].error,
        push_claimed_by="",
        push_claimed_until=None,
        updated_at=now,
    )
    if not changed:
        reached = len(still_failing) < len(results)  # some device took this round's push
        return _closed_meanwhile(delivery_id=delivery.pk, claim_id=claim_id, now=now, pushed=reached)
    return f"retry in {delay.total_seconds():.0f}s"


def _settle(*, delivery: Delivery, claim_id: str | None, now: datetime, still_failing: list) -> str:
    """Close the delivery from all its FCM attempts so far (this round's included)."""
    attempts = DeliveryAttempt.objects.filter(delivery_id=delivery.pk, channel=DeliveryAttempt.Channel.FCM)
    delivered = set(
        attempts.filter(outcome__in=DeliveryAttempt.DELIVERED_PUSH_OUTCOMES).values_list("outcome", flat=True)
    )
    rejected = attempts.filter(outcome=Outcome.REJECTED).order_by("-created_at", "-id").first()
    if delivered:
        fields = {
            "status": Delivery.Status.PUSHED,
            "pushed_at": now,
            "push_simulated": Outcome.ACCEPTED not in delivered,
            "next_attempt_at": None,
            "last_error": "",
        }
        label = "pushed (simulated)" if Outcome.ACCEPTED not in delivered else "pushed"
    else:
        if rejected is not None:
            reason, error = FailureReason.PUSH_REJECTED, rejected.error
        elif still_failing:
            reason, error = FailureReason.PUSH_UNAVAILABLE, still_failing[0].error
        else:
            gone = attempts.filter(outcome=Outcome.DEVICE_GONE).exists()
            reason = FailureReason.NO_DEVICES
            error = "Every device token was unregistered." if gone else "The recipient has no active device."
        fields = {
            "status": Delivery.Status.FAILED,
            "failure_reason": reason,
            "last_error": error,
            "failed_at": now,
            "next_attempt_at": None,
        }
        label = f"failed: {reason}"
    deliveries = _still_ours(delivery.pk, claim_id) if claim_id else Delivery.objects.filter(pk=delivery.pk)
    changed = deliveries.filter(status__in=Delivery.OPEN_STATUSES).update(
        **fields, push_claimed_by="", push_claimed_until=None, updated_at=now
    )
    if not changed:
        return _closed_meanwhile(delivery_id=delivery.pk, claim_id=claim_id, now=now, pushed=bool(delivered))
    if delivered:
        metrics.deliveries_finished_on_commit(state=Delivery.Status.PUSHED, count=1)
    else:
        metrics.deliveries_finished_on_commit(state=Delivery.Status.FAILED, reason=reason, count=1)
    return label


def _still_ours(delivery_id: int, claim_id: str):
    return Delivery.objects.filter(pk=delivery_id, push_claimed_by=claim_id, status__in=Delivery.OPEN_STATUSES)


def _closed_meanwhile(*, delivery_id: int, claim_id: str | None, now: datetime, pushed: bool = False) -> str:
    """An ack, a read or a resolution won the race while we talked to FCM: keep its status, release our claim,
    note the push. A push that reached a device of a resolved delivery is superseded: our caller replaces it."""
    fields = {"pushed_at": Coalesce(F("pushed_at"), now)} if pushed else {}
    Delivery.objects.filter(pk=delivery_id, push_claimed_by=claim_id or "").update(
        push_claimed_by="", push_claimed_until=None, **fields
    )
    status = Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
    if status in Delivery.OPEN_STATUSES:
        return "skipped: another push task took over after the lease"
    if status == Delivery.Status.RESOLVED and pushed:
        DeliveryAttempt.objects.create(
            delivery_id=delivery_id,
            channel=DeliveryAttempt.Channel.FCM,
            outcome=Outcome.SUPERSEDED,
            error="Resolved while this push was on its way: the replacement push follows.",
            created_at=now,
        )
        return SUPERSEDED
    return "skipped: closed while pushing"
