"""Publishing on behalf of an API client: recipients named by id or name, within the publisher's scope, at most
once per Idempotency-Key, in two database round trips.

The read (services/publish_plan.py) learns everything the checks need; then, the checks passed and presence
read, one statement claims the key, inserts the notification, its deliveries and their first attempts, and
commits as it runs (autocommit). Dispatch follows it at once: there is no transaction left open to wait for.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.database import TRANSIENT_DATABASE_ERRORS
from notifications import dispatch, layer, metrics, presence
from notifications.errors import NotificationError
from notifications.layer_messages import NotificationAction
from notifications.models import IdempotencyKey, Notification
from notifications.services.actions import actions_declared_check
from notifications.services.deliveries import deliveries_due_now
from notifications.services.publish import deliveries_insert_ctes, notification_content_check
from notifications.services.publish_plan import PublishPlan, publish_plan
from notifications.services.publisher_scope import publish_data_check, reserved_event_check, scope_reach_check
from notifications.sql import Columns, insert_values

PUBLISHER_REFUSED_MESSAGE = (
    "Publishing needs the notifications.publish_notification permission (and a publishing scope); "
    "a staff account alone is not enough."
)


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

    Raises, and writes nothing: `UnknownRecipients` for references that match nothing, `ReservedDataKeys`
    for data setting a key the hub sets, `OutsideScope` for anything beyond the publisher's scope (or a reserved
    event name), `ActionRefused` for actions without an action callback, `permission_denied` if the publisher
    may no longer publish, `idempotency_conflict` for a key used with a different body.

    The key is claimed by the statement that publishes (unique per publisher): a concurrent request with the
    same key waits on that insert until the first commits, then answers with its result. A key expires
    NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS after it was claimed; then the same key publishes anew.
    """
    if not users and not departments:
        raise NotificationError("A notification needs at least one user or department.", code="no_recipients")
    notification_content_check(
        event=event, title=title, data=data, priority=priority, expires_at=expires_at, subject=subject
    )
    publish_data_check(data)
    reserved_event_check(event)
    actions_declared_check(publisher_id=published_by_id, actions=actions or [])
    plan = publish_plan(
        publisher_id=published_by_id, users=users, departments=departments, event=event, document_id=document_id
    )
    if plan is None or not plan.may_publish:
        raise NotificationError(PUBLISHER_REFUSED_MESSAGE, code="permission_denied")
    scope_reach_check(plan.scope, event=event, document_id=document_id)
    notification = Notification(
        id=uuid.uuid4(),
        event=event,
        title=title,
        body=body or "",
        data=data or {},
        document_id=document_id,
        priority=priority,
        expires_at=expires_at,
        created_at=timezone.now(),
        published_by_id=published_by_id,
        subject=subject,
        actions=actions or [],
    )
    notification.recipient_count = len(plan.recipient_ids)
    # Who is online decides how each row starts: theirs as `sent`, so the rows are written once. Dispatch looks
    # again after the write for the rest, so a client connecting meanwhile is still reached.
    online = presence.online_recipients(
        recipient_ids=plan.recipient_ids, department_member_ids=plan.department_member_ids
    )
    claim = (
        None
        if idempotency_key is None
        else IdempotencyKey(
            publisher_id=published_by_id,
            key=idempotency_key,
            request_hash=request_hash,
            notification_id=notification.pk,
            created_at=notification.created_at,
        )
    )
    for _ in range(2):
        if _published(notification=notification, plan=plan, online=online, claim=claim):
            return PublishResult(notification=notification, recipient_count=len(plan.recipient_ids), repeated=False)
        assert claim is not None  # only a claimed key stops the statement
        earlier = notification_publish_repeated(
            published_by_id=published_by_id, idempotency_key=claim.key, request_hash=request_hash
        )
        if earlier is not None:
            return earlier
        # The key is taken by a claim that has expired but is not pruned yet: free it, and claim it again.
        IdempotencyKey.objects.filter(
            publisher_id=published_by_id, key=claim.key, created_at__lt=idempotency_keys_expired_before()
        ).delete()
    raise NotificationError(  # a new claim took the key between the delete and the insert: the client retries
        "This Idempotency-Key is being used by another request right now; retry.", code="idempotency_conflict"
    )


def _published(
    *, notification: Notification, plan: PublishPlan, online: presence.OnlineRecipients, claim: IdempotencyKey | None
) -> bool:
    """Write the notification, its deliveries and `claim` in one statement, then dispatch; False (nothing
    written) if `claim`'s key is taken already.

    The statement commits as it runs. If the connection dies meanwhile, the outcome is unknown: a new
    connection looks whether the notification landed. If it did, the retry sweep dispatches it (this
    process does not know whether the layer already has it: a connection shows a notification once anyway);
    if not, the statement runs once more.
    """
    for attempt in range(2):
        try:
            if not _publish_statement(notification=notification, plan=plan, online=online, claim=claim):
                return False
            break
        except TRANSIENT_DATABASE_ERRORS:
            connection.close()  # back to the pool, which drops it if broken
            if not Notification.objects.filter(pk=notification.pk).exists():
                if attempt:
                    raise
                continue
            deliveries_due_now(notification_id=notification.pk)
            return True
    payload = layer.notification_payload(notification)

    # At once in autocommit; inside a caller's transaction (a test's), after it commits. `robust`: a failure
    # there is logged and left to replay on connect and the retry sweep; the rows are written.
    def dispatch_after_commit() -> None:
        dispatch.notification_dispatch(payload=payload, recipient_ids=plan.recipient_ids, online=online)

    transaction.on_commit(dispatch_after_commit, robust=True)
    metrics.notification_published_on_commit(source="api", deliveries=len(plan.recipient_ids))
    return True


def _publish_statement(
    *, notification: Notification, plan: PublishPlan, online: presence.OnlineRecipients, claim: IdempotencyKey | None
) -> bool:
    """The write: [the key's claim,] the notification, its deliveries, their attempts. True if it wrote them."""
    ctes, params = [], []
    if claim is not None:
        columns, values = insert_values(claim)
        claim_insert = f"INSERT INTO {Columns(IdempotencyKey).table} ({', '.join(columns)})"
        ctes.append(
            f"claim AS ({claim_insert} VALUES ({', '.join(['%s'] * len(values))}) ON CONFLICT DO NOTHING RETURNING 1)"
        )
        params += values
    columns, values = insert_values(notification)
    condition = "EXISTS (SELECT 1 FROM claim)" if claim is not None else "TRUE"
    ctes.append(
        f"notification AS (INSERT INTO {Columns(Notification).table} ({', '.join(columns)})"
        f" SELECT {', '.join(['%s'] * len(values))} WHERE {condition} RETURNING 1)"
    )
    params += values
    deliveries, delivery_params = deliveries_insert_ctes(
        notification=notification,
        recipient_ids=plan.recipient_ids,
        sent_to=online.connection_counts.keys(),
        dispatch_grace=min(online.incomplete_for or settings.NOTIFY_DISPATCH_GRACE, settings.NOTIFY_DISPATCH_GRACE),
        only_if="EXISTS (SELECT 1 FROM notification)",
    )
    ctes.append(deliveries)
    with connection.cursor() as cursor:
        statement = f"WITH {', '.join(ctes)} SELECT EXISTS (SELECT 1 FROM notification)"  # noqa: S608 (as above)
        cursor.execute(statement, params + delivery_params)
        (written,) = cursor.fetchone()
    return written


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


def _earlier_result(earlier: IdempotencyKey, request_hash: str) -> PublishResult:
    if earlier.request_hash != request_hash:
        raise NotificationError(
            "This Idempotency-Key was already used with a different request body; use a new key.",
            code="idempotency_conflict",
        )
    notification = earlier.notification
    assert notification is not None  # set in the transaction that claimed the key, which has committed
    return PublishResult(notification=notification, recipient_count=notification.deliveries.count(), repeated=True)
