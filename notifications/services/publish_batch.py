"""Publishing many notifications in one request: each item as a single publish of it would be (the same checks,
errors and idempotency keys as publish_request.py), all in one transaction, each answered on its own.

An item that is refused (invalid, unknown recipients, beyond the publisher's scope, its key used with another
body) writes nothing and does not stop the others: its checks all run before anything of it is written, and
claiming its key cannot fail (a key already taken is an answer, not an error), so no item needs a savepoint.
Keys are the single publish's (one table, per publisher): an item whose key answered before replays what it
published, whichever endpoint that was, and a key twice in one batch answers the second like a retry of the
first. The batch commits once, verified as a single publish is (a PostgreSQL restart during COMMIT neither loses
it nor doubles it); `notification_publish` dispatches each notification after that commit.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from core.database import atomic_with_verified_commit
from notifications import selectors
from notifications.errors import NotificationError
from notifications.models import IdempotencyKey, Notification
from notifications.services.actions import actions_declared_check
from notifications.services.deliveries import deliveries_due_now
from notifications.services.publish import notification_publish
from notifications.services.publish_request import PublishResult, _earlier_result, idempotency_keys_expired_before
from notifications.services.publisher_scope import publish_data_check, publisher_scope_check
from notifications.sql import Columns


@dataclass(frozen=True)
class PublishBatchItem:
    """One notification of a batch as the API parsed it: what to publish, or why its body is invalid."""

    # `notification_publish`'s arguments, but `users` and `departments` (references, as the API takes them) for
    # its ids, and no publisher; None when `invalid`.
    request: dict | None
    invalid: Exception | None = None  # what a single publish of this body would have been refused with
    idempotency_key: str | None = None
    request_hash: str = ""


@dataclass(frozen=True)
class PublishBatchOutcome:
    """What became of one item: `result` (published, or replayed from its key), or the error it was `refused` with."""

    result: PublishResult | None = None
    refused: Exception | None = None


def notification_publish_batch_requested(
    *, published_by_id: int, items: Sequence[PublishBatchItem]
) -> list[PublishBatchOutcome]:
    """Publish every item as `notification_publish_requested` would, in one transaction: one outcome per item,
    in order. Refusals are outcomes, never raised. An item whose key answered before is replayed before its body
    is looked at, as a single publish is (its body was valid then)."""
    keys = sorted({item.idempotency_key for item in items if item.idempotency_key is not None})

    def publish_all() -> list[PublishBatchOutcome]:
        earlier = _keys_claimed_before(publisher_id=published_by_id, keys=keys)
        references = _recipient_references(items)
        return [
            _item_publish(published_by_id=published_by_id, item=item, earlier=earlier, references=references)
            for item in items
        ]

    # A PostgreSQL restart during COMMIT must neither lose the batch nor publish it twice.
    return atomic_with_verified_commit(publish_all, landed=_landed, after_lost_commit=_dispatch_by_the_sweep)


def _recipient_references(items: Sequence[PublishBatchItem]) -> selectors.RecipientReferences:
    """What every item's recipients name, in one query per kind rather than one per item."""
    requests = [item.request for item in items if item.request is not None]
    return selectors.recipient_references(
        users=[user for request in requests for user in request.get("users", ())],
        departments=[department for request in requests for department in request.get("departments", ())],
    )


def _keys_claimed_before(*, publisher_id: int, keys: list[str]) -> dict[str, IdempotencyKey]:
    """The keys that answer already, in one query. Expired ones are deleted, so the items can claim them anew
    (their row locks make a concurrent request with one of these keys wait for this batch)."""
    if not keys:
        return {}
    claims = IdempotencyKey.objects.filter(publisher_id=publisher_id, key__in=keys)
    claims.filter(created_at__lt=idempotency_keys_expired_before()).delete()
    return {claim.key: claim for claim in claims.select_related("notification")}


def _item_publish(
    *,
    published_by_id: int,
    item: PublishBatchItem,
    earlier: dict[str, IdempotencyKey],
    references: selectors.RecipientReferences,
) -> PublishBatchOutcome:
    try:
        claim = earlier.get(item.idempotency_key) if item.idempotency_key is not None else None
        if claim is not None:
            return PublishBatchOutcome(result=_earlier_result(claim, item.request_hash))
        if item.request is None:
            return PublishBatchOutcome(refused=item.invalid)
        result = _checked_publish(published_by_id=published_by_id, item=item, references=references, **item.request)
        return PublishBatchOutcome(result=result)
    except NotificationError as refusal:  # raised before the item wrote anything, or after its claim was undone
        return PublishBatchOutcome(refused=refusal)


def _checked_publish(
    *,
    published_by_id: int,
    item: PublishBatchItem,
    references: selectors.RecipientReferences,
    users: Sequence[int | str] = (),
    departments: Sequence[int | str] = (),
    **content,
) -> PublishResult:
    """A single publish's checks, all before the first write; then the item's key claimed, and the publish."""
    publish_data_check(content.get("data"))
    actions_declared_check(publisher_id=published_by_id, actions=content.get("actions") or [])
    user_ids, department_ids = references.resolve(users=users, departments=departments)
    publisher_scope_check(
        publisher_id=published_by_id,
        event=content["event"],
        user_ids=user_ids,
        department_ids=department_ids,
        document_id=content.get("document_id"),
    )
    claim_id = None
    if item.idempotency_key is not None:
        claim_id = _key_claimed(publisher_id=published_by_id, key=item.idempotency_key, request_hash=item.request_hash)
        if claim_id is None:  # claimed meanwhile, by a request that has committed or an item before this one
            earlier = IdempotencyKey.objects.select_related("notification")
            return _earlier_result(
                earlier.get(publisher_id=published_by_id, key=item.idempotency_key), item.request_hash
            )
    try:
        # Just resolved: a recipient deleted in between gets no delivery (the insert selects existing users).
        notification = notification_publish(
            **content,
            published_by_id=published_by_id,
            user_ids=user_ids,
            department_ids=department_ids,
            recipients_verified=True,
        )
    except NotificationError:  # its own last checks (an expires_at passed meanwhile): nothing of it was written
        if claim_id is not None:
            IdempotencyKey.objects.filter(pk=claim_id).delete()  # but its claim: the key stays free
        raise
    if claim_id is not None:
        IdempotencyKey.objects.filter(pk=claim_id).update(notification=notification)
    return PublishResult(notification=notification, recipient_count=notification.recipient_count, repeated=False)


def _key_claimed(*, publisher_id: int, key: str, request_hash: str) -> int | None:
    """Claim the key (its row's id), or None if it is taken. A request holding it that has not committed yet is
    waited for, on the unique index. Taken is no error, so the batch's transaction needs no savepoint for it."""
    claim = Columns(IdempotencyKey)
    sql = f"""
        INSERT INTO {claim.table} ({claim.publisher}, {claim.key}, {claim.request_hash}, {claim.created_at})
        VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING {claim.id}
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [publisher_id, key, request_hash, timezone.now()])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _landed(outcomes: list[PublishBatchOutcome]) -> bool:
    """Whether the batch's COMMIT landed: a notification it created is there. (A batch that created none wrote
    nothing to keep: running it again answers the same.)"""
    created = _created(outcomes)
    return bool(created) and Notification.objects.filter(pk=created[0].pk).exists()


def _dispatch_by_the_sweep(outcomes: list[PublishBatchOutcome]) -> None:
    """The commit landed but the dispatch of what it created was lost with the connection: the sweep's now."""
    for notification in _created(outcomes):
        deliveries_due_now(notification_id=notification.pk)


def _created(outcomes: list[PublishBatchOutcome]) -> list[Notification]:
    return [outcome.result.notification for outcome in outcomes if outcome.result and not outcome.result.repeated]
