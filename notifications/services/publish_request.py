"""Publishing on behalf of an API client: recipients named by id or name, within the publisher's scope, at most
once per Idempotency-Key."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.database import atomic_with_verified_commit
from notifications import selectors
from notifications.errors import NotificationError
from notifications.layer_messages import NotificationAction
from notifications.models import IdempotencyKey, Notification
from notifications.services.actions import actions_declared_check
from notifications.services.deliveries import deliveries_due_now
from notifications.services.publish import notification_publish
from notifications.services.publisher_scope import publish_data_check, publisher_scope_check


@dataclass(frozen=True)
class PublishResult:
    notification: Notification
    recipient_count: int
    repeated: bool  # True: an earlier request with the same Idempotency-Key produced it


def notification_publish_requested(
    *,
    published_by_id: int,
    event: str,
    title: str,
    body: str = "",
    data: dict | None = None,
    users: Sequence[int | str] = (),
    departments: Sequence[int | str] = (),
    document_id: int | None = None,
    priority: str = Notification.Priority.NORMAL,
    expires_at: datetime | None = None,
    subject: str = "",
    actions: list[NotificationAction] | None = None,
    idempotency_key: str | None = None,
    request_hash: str = "",
) -> PublishResult:
    """Resolve the recipients and publish, or answer what an earlier request with the same key published.

        The key is claimed first by inserting it (unique per publisher) in the
        publishing transaction: a concurrent request with the same key blocks on
        that insert until this one commits, then answers with its result; if this one fails,
        the key is free again. The same key with a different body raises
        `idempotency_conflict`. A key expires NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS after
        it was claimed: then the same key publishes anew. Unknown recipients raise
        `UnknownRecipients`, data setting a reserved key `ReservedDataKeys`, and anything
        beyond the publisher's scope (or a reserved event name) `OutsideScope`, and actions without an action callback
    `ActionRefused`; then nothing
        is written.
    """
    publish_data_check(data)
    actions_declared_check(publisher_id=published_by_id, actions=actions or [])
    content = {
        "event": event,
        "title": title,
        "body": body,
        "data": data,
        "document_id": document_id,
        "priority": priority,
        "expires_at": expires_at,
        "published_by_id": published_by_id,
        "subject": subject,
        "actions": actions or [],
    }

    def publish() -> PublishResult:
        if idempotency_key is None:
            # One transaction, no savepoint (notification_publish joins this one).
            return _resolve_and_publish(users=users, departments=departments, content=content)
        claim, earlier = _claim_or_earlier_result(
            publisher_id=published_by_id, key=idempotency_key, request_hash=request_hash
        )
        if earlier is not None:
            return earlier
        result = _resolve_and_publish(users=users, departments=departments, content=content)
        claim.notification = result.notification
        claim.save(update_fields=["notification"])
        return result

    # A PostgreSQL restart during COMMIT must neither lose a publish nor make it twice.
    return atomic_with_verified_commit(publish, landed=_landed, after_lost_commit=_dispatch_by_the_sweep)


def _landed(result: PublishResult) -> bool:
    return Notification.objects.filter(pk=result.notification.pk).exists()


def _dispatch_by_the_sweep(result: PublishResult) -> None:
    """The commit landed but its dispatch was lost with the connection: the retry sweep sends or pushes now."""
    if not result.repeated:
        deliveries_due_now(notification_id=result.notification.pk)


def _resolve_and_publish(
    *, users: Sequence[int | str], departments: Sequence[int | str], content: dict
) -> PublishResult:
    user_ids, department_ids = selectors.recipients_resolve(users=users, departments=departments)
    publisher_scope_check(
        publisher_id=content["published_by_id"],
        event=content["event"],
        user_ids=user_ids,
        department_ids=department_ids,
        document_id=content["document_id"],
    )
    # Just resolved: a recipient deleted in between gets no delivery (the insert selects existing users).
    notification = notification_publish(
        **content, user_ids=user_ids, department_ids=department_ids, recipients_verified=True
    )
    return PublishResult(notification=notification, recipient_count=notification.recipient_count, repeated=False)


def notification_publish_repeated(
    *, published_by_id: int, idempotency_key: str, request_hash: str
) -> PublishResult | None:
    """What an earlier request with this key published, or None if the key is unused or has expired.

    Raises `idempotency_conflict` if the key was used with a different body.
    """
    earlier = (
        IdempotencyKey.objects.select_related("notification")
        .filter(publisher_id=published_by_id, key=idempotency_key, created_at__gte=idempotency_keys_expired_before())
        .first()
    )
    return None if earlier is None else _earlier_result(earlier, request_hash)


def idempotency_keys_expired_before() -> datetime:
    """Keys claimed before this time have expired: the same key publishes anew (the retention pruner deletes
    them, but no lookup waits for that)."""
    return timezone.now() - timedelta(hours=settings.NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS)


def _claim_or_earlier_result(*, publisher_id: int, key: str, request_hash: str):
    # An expired key the pruner has not deleted yet is deleted here, so the insert can claim the key anew. Its row
    # lock makes a concurrent request with the same key wait, then meet this claim on the unique index.
    IdempotencyKey.objects.filter(
        publisher_id=publisher_id, key=key, created_at__lt=idempotency_keys_expired_before()
    ).delete()
    try:
        with transaction.atomic():  # a savepoint: the failed insert must not poison the outer transaction
            return IdempotencyKey.objects.create(publisher_id=publisher_id, key=key, request_hash=request_hash), None
    except IntegrityError:
        pass
    # The key's first request has committed (the insert waited for it); this statement sees its row.
    earlier = IdempotencyKey.objects.select_related("notification").get(publisher_id=publisher_id, key=key)
    return None, _earlier_result(earlier, request_hash)


def _earlier_result(earlier: IdempotencyKey, request_hash: str) -> PublishResult:
    if earlier.request_hash != request_hash:
        raise NotificationError(
            "This Idempotency-Key was already used with a different request body; use a new key.",
            code="idempotency_conflict",
        )
    notification = earlier.notification
    assert notification is not None  # set in the transaction that claimed the key, which has committed
    return PublishResult(notification=notification, recipient_count=notification.deliveries.count(), repeated=True)
