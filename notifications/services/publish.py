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
from django.db import connection, transaction
from django.utils import timezone

from notifications import dispatch
from notifications.errors import NotificationError, UnknownRecipients
from notifications.models import EVENT_NAME_VALIDATOR, Delivery, Notification
from notifications.sql import Columns
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
    recipients_verified: bool = False,
) -> Notification:
    """Persist a notification and one Delivery per distinct active recipient, then dispatch after commit.

    A user targeted directly and through one or more departments gets one
    Delivery. Unknown user or department ids raise `UnknownRecipients` and
    nothing is written. `recipients_verified=True` says the caller has just
    resolved the ids in this transaction (e.g. `recipients_resolve`), so the
    existence check is not run twice.
    """
    user_ids = set(user_ids)
    department_ids = set(department_ids)
    _validate(event=event, title=title, data=data, priority=priority, expires_at=expires_at)
    if not user_ids and not department_ids:
        raise NotificationError("A notification needs at least one user or department.", code="no_recipients")
    if not recipients_verified:
        _check_recipients_exist(user_ids=user_ids, department_ids=department_ids)

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
    recipient_ids, department_member_ids = _deliveries_create(
        notification=notification, user_ids=user_ids, department_ids=department_ids, next_attempt_at=redispatch_at
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


def _check_recipients_exist(*, user_ids: set[int], department_ids: set[int]) -> None:
    known_users = set(User.objects.filter(pk__in=user_ids).values_list("pk", flat=True)) if user_ids else set()
    known_departments = (
        set(Department.objects.filter(pk__in=department_ids).values_list("pk", flat=True)) if department_ids else set()
    )
    if known_users != user_ids or known_departments != department_ids:
        raise UnknownRecipients(
            user_ids=sorted(user_ids - known_users), department_ids=sorted(department_ids - known_departments)
        )


def _deliveries_create(
    *, notification: Notification, user_ids: set[int], department_ids: set[int], next_attempt_at: datetime
) -> tuple[set[int], dict[int, set[int]]]:
    """One pending Delivery per distinct active recipient; returns them, and each department's active members.

    On PostgreSQL this is one statement whatever the department's size: the
    recipients are selected, deduplicated and inserted inside the database, and
    only their (department, user) ids come back for the dispatch's routing.
    """
    if connection.vendor != "postgresql":
        return _deliveries_create_orm(
            notification=notification,
            user_ids=user_ids,
            department_ids=department_ids,
            next_attempt_at=next_attempt_at,
        )
    columns, values = _delivery_insert_values(notification=notification, next_attempt_at=next_attempt_at)
    user, membership = Columns(User), Columns(DepartmentMembership)
    sql = f"""
        WITH targets AS (
            SELECT m.{membership.department} AS department_id, m.{membership.user} AS user_id
              FROM {membership.table} m JOIN {user.table} u ON u.{user.id} = m.{membership.user}
             WHERE m.{membership.department} = ANY(%s) AND u.{user.is_active}
            UNION ALL
            SELECT NULL, u.{user.id} FROM {user.table} u WHERE u.{user.id} = ANY(%s) AND u.{user.is_active}
        ), inserted AS (  -- ids in recipient order, as before (listings order deliveries by id)
            INSERT INTO {Columns(Delivery).table} ({", ".join(columns)})
            SELECT {", ".join(["%s"] * len(values))}, user_id FROM (SELECT DISTINCT user_id FROM targets) recipients
             ORDER BY user_id
        )
        SELECT department_id, user_id FROM targets
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(department_ids), sorted(user_ids), *values])
        rows = cursor.fetchall()
    recipient_ids: set[int] = set()
    department_member_ids: dict[int, set[int]] = defaultdict(set)
    for department_id, user_id in rows:
        recipient_ids.add(user_id)
        if department_id is not None:
            department_member_ids[department_id].add(user_id)
    return recipient_ids, dict(department_member_ids)


def _delivery_insert_values(*, notification: Notification, next_attempt_at: datetime) -> tuple[list[str], list]:
    """Quoted columns and database values of a new Delivery, every field at its model default but these;
    the recipient column comes last (the SELECT supplies it)."""
    now = timezone.now()
    given = {"notification_id": notification.pk, "next_attempt_at": next_attempt_at, "created_at": now}
    columns, values = [], []
    for field in Delivery._meta.concrete_fields:
        if field.primary_key or field.attname == "recipient_id":
            continue
        if field.attname in given:
            value = given[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        columns.append(connection.ops.quote_name(field.column))
        values.append(field.get_db_prep_save(value, connection))
    columns.append(connection.ops.quote_name(Delivery._meta.get_field("recipient").column))
    return columns, values


def _deliveries_create_orm(
    *, notification: Notification, user_ids: set[int], department_ids: set[int], next_attempt_at: datetime
) -> tuple[set[int], dict[int, set[int]]]:
    """The portable path (SQLite in `make run`): the same rows through the ORM."""
    recipient_ids = set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))
    department_member_ids: dict[int, set[int]] = defaultdict(set)
    memberships = DepartmentMembership.objects.filter(department_id__in=department_ids, user__is_active=True)
    for department_id, user_id in memberships.values_list("department_id", "user_id"):
        department_member_ids[department_id].add(user_id)
        recipient_ids.add(user_id)
    Delivery.objects.bulk_create(
        [
            Delivery(notification=notification, recipient_id=user_id, next_attempt_at=next_attempt_at)
            for user_id in sorted(recipient_ids)
        ],
        batch_size=1_000,
    )
    return recipient_ids, dict(department_member_ids)
