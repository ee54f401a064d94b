"""Writes of the notifications domain.

`notification_publish` is where every notification is born: it persists the
Notification and one Delivery per recipient in the caller's transaction and
hands them to `notifications.events` only after that transaction commits.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from notifications import dispatch
from notifications.errors import NotificationError, UnknownRecipients
from notifications.models import EVENT_NAME_VALIDATOR, Delivery, Notification
from workflow.models import Department, DepartmentMembership

User = get_user_model()


@transaction.atomic
def notification_publish(
    *,
    event: str,
    title: str,
    body: str = "",
    data: dict | None = None,
    user_ids: Iterable[int] = (),
    department_ids: Iterable[int] = (),
    document_id: int | None = None,
    priority: str = Notification.Priority.NORMAL,
    expires_at: datetime | None = None,
    published_by_id: int | None = None,
) -> Notification:
    """Persist a notification and one Delivery per distinct active recipient, then dispatch after commit.

    A user targeted directly and through one or more departments gets one
    Delivery. Unknown user or department ids raise `UnknownRecipients` and
    nothing is written.
    """
    user_ids = set(user_ids)
    department_ids = set(department_ids)
    _validate(event=event, title=title, data=data, priority=priority, expires_at=expires_at)
    if not user_ids and not department_ids:
        raise NotificationError("A notification needs at least one user or department.", code="no_recipients")
    recipient_ids, department_member_ids = _resolve_recipients(user_ids=user_ids, department_ids=department_ids)

    notification = Notification.objects.create(
        event=event,
        title=title,
        body=body or "",
        data=data or {},
        document_id=document_id,
        priority=priority,
        expires_at=expires_at,
        published_by_id=published_by_id,
    )
    # If this process dies between commit and dispatch, the retry sweep dispatches them after the grace period.
    redispatch_at = notification.created_at + timedelta(seconds=settings.NOTIFY_DISPATCH_GRACE)
    # One multi-row INSERT however large the department (fan-out stays one round trip).
    Delivery.objects.bulk_create(
        [
            Delivery(notification=notification, recipient_id=user_id, next_attempt_at=redispatch_at)
            for user_id in sorted(recipient_ids)
        ],
        batch_size=1_000,
    )
    notification.recipient_count = len(recipient_ids)
    dispatch.notification_dispatch_on_commit(
        notification=notification, recipient_ids=sorted(recipient_ids), department_member_ids=department_member_ids
    )
    return notification


def _validate(*, event: str, title: str, data: dict | None, priority: str, expires_at: datetime | None) -> None:
    try:
        EVENT_NAME_VALIDATOR(event or "")
    except Exception as error:  # ValidationError: restate it in the domain's terms
        raise NotificationError(f"Invalid event name {event!r}: {error.messages[0]}", code="invalid") from None
    if not (title or "").strip():
        raise NotificationError("A notification needs a title.", code="invalid")
    if data is not None and not isinstance(data, dict):
        raise NotificationError("data must be a JSON object.", code="invalid")
    if priority not in Notification.Priority.values:
        raise NotificationError(f"Unknown priority {priority!r}.", code="invalid")
    if expires_at is not None and expires_at <= timezone.now():
        raise NotificationError("expires_at is in the past.", code="invalid")


def _resolve_recipients(*, user_ids: set[int], department_ids: set[int]) -> tuple[set[int], dict[int, set[int]]]:
    """All distinct active recipients, and each targeted department's active members (dispatch routes by them)."""
    known_users = set(User.objects.filter(pk__in=user_ids).values_list("pk", flat=True))
    known_departments = set(Department.objects.filter(pk__in=department_ids).values_list("pk", flat=True))
    if known_users != user_ids or known_departments != department_ids:
        raise UnknownRecipients(
            user_ids=sorted(user_ids - known_users), department_ids=sorted(department_ids - known_departments)
        )
    recipient_ids = set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))
    department_member_ids: dict[int, set[int]] = defaultdict(set)
    memberships = DepartmentMembership.objects.filter(department_id__in=department_ids, user__is_active=True)
    for department_id, user_id in memberships.values_list("department_id", "user_id"):
        department_member_ids[department_id].add(user_id)
        recipient_ids.add(user_id)
    return recipient_ids, dict(department_member_ids)
