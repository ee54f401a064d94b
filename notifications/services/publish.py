"""Writes of the notifications domain.

`notification_publish` is where every notification is born: it persists the
Notification and one Delivery per recipient in the caller's transaction and
hands them to `notifications.layer` only after that transaction commits.
"""

import functools
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from notifications import dispatch, layer, metrics, presence
from notifications.errors import NotificationError, UnknownRecipients
from notifications.layer_messages import NotificationAction
from notifications.models import EVENT_NAME_VALIDATOR, Delivery, Notification
from notifications.preferences import is_always_mandatory, unmuted_recipients_sql
from notifications.services.deliveries import websocket_retry_delay
from notifications.sql import Columns, boolean_array, integer_array
from workflow.models import Department, DepartmentMembership

User = get_user_model()


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
    subject: str = "",
    push_allowed: bool = True,
    actions: list[NotificationAction] | None = None,
    recipients_verified: bool = False,
) -> Notification:
    """Persist a notification and one Delivery per distinct active recipient, then dispatch after commit.

    A user targeted directly and through one or more departments gets one
    Delivery. Unknown user or department ids raise `UnknownRecipients` and
    nothing is written. `subject` says what it is about (e.g. `task:42`): resolving that subject
    (services/resolution.py) resolves it everywhere. `actions` are what a recipient may do from it
    (services/actions.py). `recipients_verified=True` says the caller has just resolved the ids in this
    transaction (a batch publish's references), so the existence check is not run twice.
    `push_allowed=False` makes it in-app only: nobody is pushed (services/pushes.py closes a delivery that
    comes to a push as failed `in_app_only`).
    """
    user_ids = set(user_ids)
    department_ids = set(department_ids)
    notification_content_check(
        event=event, title=title, data=data, priority=priority, expires_at=expires_at, subject=subject
    )
    if not user_ids and not department_ids:
        raise NotificationError("A notification needs at least one user or department.", code="no_recipients")
    if not recipients_verified:
        _check_recipients_exist(user_ids=user_ids, department_ids=department_ids)
    return _notification_persist(
        user_ids=user_ids,
        department_ids=department_ids,
        fields={
            "event": event,
            "title": title,
            "body": body or "",
            "data": data or {},
            "document_id": document_id,
            "priority": priority,
            "expires_at": expires_at,
            "published_by_id": published_by_id,
            "subject": subject,
            "push_allowed": push_allowed,
            "actions": actions or [],
        },
    )


# No savepoint when the caller's transaction is open (a workflow service's, or the API's verified commit): only
# a database error can fail it after the checks above, and that fails the caller's whole transaction anyway
# (no approval without its notification); a savepoint costs two round trips per publish.
@transaction.atomic(savepoint=False)
def _notification_persist(*, user_ids: set[int], department_ids: set[int], fields: dict) -> Notification:
    notification = Notification.objects.create(**fields)
    recipient_ids, department_member_ids = _recipients_of(
        user_ids=user_ids, department_ids=department_ids, event=fields["event"]
    )
    # Who is online decides how each row starts: theirs as `sent` (the send follows the commit), so the rows
    # are written once, not inserted and then updated. Dispatch looks again after the commit for the rest,
    # so a client connecting meanwhile is still reached (see dispatch.notification_dispatch).
    online = presence.online_recipients(recipient_ids=recipient_ids, department_member_ids=department_member_ids)
    _deliveries_create(
        notification=notification,
        recipient_ids=recipient_ids,
        sent_to=online.connection_counts.keys(),
        dispatch_grace=min(online.incomplete_for or settings.NOTIFY_DISPATCH_GRACE, settings.NOTIFY_DISPATCH_GRACE),
    )
    notification.recipient_count = len(recipient_ids)
    payload = layer.notification_payload(notification)

    # After the commit, never before: the rows exist whatever dispatch meets. `robust`: a failure there is
    # logged and left to replay on connect and the retry sweep, never raised into the caller, whose
    # transaction has committed. (A def, not functools.partial: Django's robust on_commit logs its __qualname__.)
    def dispatch_after_commit() -> None:
        dispatch.notification_dispatch(payload=payload, recipient_ids=recipient_ids, online=online)

    transaction.on_commit(dispatch_after_commit, robust=True)
    # Published through the API means by a publisher (a service user); the workflow's notifications have none.
    source = "workflow" if fields["published_by_id"] is None else "api"
    metrics.notification_published_on_commit(source=source, deliveries=len(recipient_ids))
    return notification


def notification_content_check(
    *, event: str, title: str, data: dict | None, priority: str, expires_at: datetime | None, subject: str
) -> None:
    """Raises NotificationError (`invalid`) for content no notification may have, whoever publishes it."""
    _validate(event=event, title=title, data=data, priority=priority, expires_at=expires_at)
    _validate_subject(subject)


def _validate(*, event: str, title: str, data: dict | None, priority: str, expires_at: datetime | None) -> None:
    try:
        EVENT_NAME_VALIDATOR(event or "")
    except ValidationError as error:  # restate it in the domain's terms
        raise NotificationError(f"Invalid event name {event!r}: {error.messages[0]}", code="invalid") from None
    if not (title or "").strip():
        raise NotificationError("A notification needs a title.", code="invalid")
    if data is not None and not isinstance(data, dict):
        raise NotificationError("data must be a JSON object.", code="invalid")
    if priority not in Notification.Priority.values:
        raise NotificationError(f"Unknown priority {priority!r}.", code="invalid")
    if expires_at is not None and expires_at <= timezone.now():
        raise NotificationError("expires_at is in the past.", code="invalid")


MAX_SUBJECT_LENGTH = cast(int, Notification._meta.get_field("subject").max_length)  # a CharField: it has one


def _validate_subject(subject: str) -> None:
    """At most MAX_SUBJECT_LENGTH printable characters (it is compared exactly, and shown in the admin)."""
    if not isinstance(subject, str) or len(subject) > MAX_SUBJECT_LENGTH or not subject.isprintable():
        raise NotificationError(f"subject must be at most {MAX_SUBJECT_LENGTH} printable characters.", code="invalid")


def _check_recipients_exist(*, user_ids: set[int], department_ids: set[int]) -> None:
    known_users = set(User.objects.filter(pk__in=user_ids).values_list("pk", flat=True)) if user_ids else set()
    known_departments = (
        set(Department.objects.filter(pk__in=department_ids).values_list("pk", flat=True)) if department_ids else set()
    )
    if known_users != user_ids or known_departments != department_ids:
        raise UnknownRecipients(
            user_ids=sorted(user_ids - known_users), department_ids=sorted(department_ids - known_departments)
        )


def _recipients_of(
    *, user_ids: set[int], department_ids: set[int], event: str
) -> tuple[list[int], dict[int, set[int]]]:
    """Every distinct active recipient who has not muted `event` (sorted), and each targeted department's.

    One query whatever the departments' sizes (written out: the ORM's version took longer to build than to run);
    a user who muted the event type is no recipient of it (notifications/preferences.py).
    """
    user, membership = Columns(User), Columns(DepartmentMembership)
    targets = f"""
        SELECT m.{membership.department} AS department_id, m.{membership.user} AS user_id
          FROM {membership.table} m JOIN {user.table} u ON u.{user.id} = m.{membership.user}
         WHERE m.{membership.department} = ANY(%s) AND u.{user.is_active}
        UNION ALL
        SELECT NULL, u.{user.id} FROM {user.table} u WHERE u.{user.id} = ANY(%s) AND u.{user.is_active}
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    sql = unmuted_recipients_sql(targets=targets, user_column="user_id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(department_ids), sorted(user_ids), event, event, is_always_mandatory(event)])
        targets = cursor.fetchall()
    return recipients_by_department(targets)


def recipients_by_department(targets: list) -> tuple[list[int], dict[int, set[int]]]:
    """From (department id or None, user id) rows: every distinct recipient (sorted), and each department's."""
    recipient_ids: set[int] = set()
    department_member_ids: dict[int, set[int]] = defaultdict(set)
    for department_id, user_id in targets:
        recipient_ids.add(user_id)
        if department_id is not None:
            department_member_ids[department_id].add(user_id)
    return sorted(recipient_ids), dict(department_member_ids)


def _deliveries_create(
    *, notification: Notification, recipient_ids: list[int], sent_to: Collection[int], dispatch_grace: float
) -> None:
    """One Delivery per recipient: `sent` (its first WebSocket send counted; dispatch logs it once made) for
    those in `sent_to`, the others `pending` until dispatch pushes them. One statement, however many recipients.
    """
    ctes, params = deliveries_insert_ctes(
        notification=notification, recipient_ids=recipient_ids, sent_to=sent_to, dispatch_grace=dispatch_grace
    )
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT 1", params)


def deliveries_insert_ctes(
    *,
    notification: Notification,
    recipient_ids: list[int],
    sent_to: Collection[int],
    dispatch_grace: float,
    only_if: str = "TRUE",
) -> tuple[str, list]:
    """A CTE (`deliveries`) that inserts the notification's Delivery rows, and its parameters: for a statement
    of the caller's. Dispatch logs the first send of the `sent` ones once it has made it.

    A `pending` row is due for the retry sweep after `dispatch_grace` seconds (in case this process dies
    between commit and dispatch: NOTIFY_DISPATCH_GRACE, or sooner while the presence registry is incomplete);
    a `sent` one after the ack timeout, like any WebSocket send. A recipient deleted since they were resolved
    gets no row (the insert joins the users). `only_if`: an SQL condition on the caller's CTEs; when it is
    false nothing is inserted.
    """
    now = timezone.now()
    sent_fields = {
        "status": Delivery.Status.SENT,
        "attempts": 1,
        "sent_at": now,
        "next_attempt_at": now + websocket_retry_delay(1),
    }
    pending_fields = {"next_attempt_at": notification.created_at + timedelta(seconds=dispatch_grace)}
    sent_to = set(sent_to)
    columns, expressions, params = _delivery_columns(
        sent={"created_at": now, **sent_fields}, pending={"created_at": now, **pending_fields}, now=now
    )
    delivery, user = Columns(Delivery), Columns(User)
    ctes = f"""
        deliveries AS (  -- ids in recipient order (listings order deliveries by id)
            INSERT INTO {delivery.table} ({", ".join(columns)}, {delivery.notification}, {delivery.recipient})
            SELECT {", ".join(expressions)}, %s, r.user_id
              FROM unnest(%s::integer[], %s::boolean[]) AS r(user_id, live)
              JOIN {user.table} u ON u.{user.id} = r.user_id
             WHERE {only_if}
             ORDER BY r.user_id
         RETURNING {delivery.id}
        )
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    params += [
        notification.pk,
        integer_array(recipient_ids),
        boolean_array(user_id in sent_to for user_id in recipient_ids),
    ]
    return ctes, params


def _delivery_columns(*, sent: dict, pending: dict, now) -> tuple[list[str], list[str], list]:
    """Quoted columns of a new Delivery but its two keys, and for each the SQL that gives its value: one
    value if both rows agree, else `CASE WHEN r.live` (the recipient is online) between the two.

    `sent` and `pending` set fields of each kind of row by attribute name (plain values: strings, numbers,
    aware datetimes); every other field takes its default, and `updated_at` (auto_now) `now`.
    """
    columns, expressions, params = [], [], []
    for column, attname, default in _delivery_insert_fields():
        if default is _NOW:
            default = now
        values = [sent.get(attname, default), pending.get(attname, default)]
        columns.append(column)
        if values[0] == values[1]:
            expressions.append("%s")
            params.append(values[0])
        else:
            expressions.append("CASE WHEN r.live THEN %s ELSE %s END")
            params += values
    return columns, expressions, params


_NOW = object()  # the field's value is the time of the insert (auto_now, or a callable default such as now)


@functools.cache
def _delivery_insert_fields() -> list[tuple[str, str, object]]:
    """(quoted column, attribute name, default as the database takes it, or _NOW) of a Delivery's fields but
    its keys: worked out once, not on every publish (it was a quarter of a publish's own CPU)."""
    fields = []
    for field in Delivery._meta.concrete_fields:
        if field.primary_key or field.attname in ("notification_id", "recipient_id"):
            continue
        if getattr(field, "auto_now", False) or (field.has_default() and callable(field.default)):
            default = _NOW
        else:
            default = field.get_db_prep_save(field.get_default(), connection)
        fields.append((connection.ops.quote_name(cast(str, field.column)), field.attname, default))
    return fields
