"""Read-side queries of the notifications domain. The hub and the API read through these."""

import functools
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Case, Count, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from notifications.errors import UnknownRecipients
from notifications.models import UNREAD_DELIVERIES, Delivery, DeliveryAttempt, Device, Notification
from notifications.sql import Columns
from workflow.models import Department, DepartmentMembership

# A failed push (no device, rejected) still reaches the user when they next connect.
UNACKNOWLEDGED_STATUSES = (
    Delivery.Status.PENDING,
    Delivery.Status.SENT,
    Delivery.Status.PUSHED,
    Delivery.Status.FAILED,
)


def parse_notification_id(value) -> uuid.UUID | None:
    """A notification id from client input, or None if it cannot be one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def deliveries_of(user_id: int) -> QuerySet[Delivery]:
    """A user's deliveries with their notifications, newest first."""
    return Delivery.objects.filter(recipient_id=user_id).select_related("notification").order_by("-created_at", "-id")


def deliveries_to_replay(user_id: int) -> QuerySet[Delivery]:
    """What a connecting client has not acknowledged yet, oldest first, expired ones left out."""
    return (
        _unexpired_deliveries_of(user_id)
        .filter(status__in=UNACKNOWLEDGED_STATUSES)
        .select_related("notification")
        .order_by("created_at", "id")
    )


def _unexpired_deliveries_of(user_id: int) -> QuerySet[Delivery]:
    now = timezone.now()
    return Delivery.objects.filter(recipient_id=user_id).filter(
        Q(notification__expires_at__isnull=True) | Q(notification__expires_at__gt=now)
    )


def unread_count(user_id: int) -> int:
    """Deliveries the user has not read, expired and resolved ones left out."""
    return _unexpired_deliveries_of(user_id).filter(UNREAD_DELIVERIES).count()


def unread_counts(user_ids: Collection[int]) -> dict[int, int]:
    """`unread_count` of each user, in one query (a resolution tells every recipient theirs)."""
    now = timezone.now()
    counts = dict.fromkeys(user_ids, 0)
    rows = (
        Delivery.objects.filter(recipient_id__in=list(counts))
        .filter(Q(notification__expires_at__isnull=True) | Q(notification__expires_at__gt=now))
        .filter(UNREAD_DELIVERIES)
        .order_by()
        .values_list("recipient_id")
        .annotate(unread=Count("id"))
    )
    counts.update(rows)
    return counts


@dataclass(frozen=True)
class InboxSummary:
    unread: int  # as `unread_count`
    unacknowledged: int  # what `deliveries_to_replay` would yield


def inbox_summary(user_id: int) -> InboxSummary:
    """Both counts a connecting client needs, in one query: most connects have nothing to replay, and
    knowing that spares the replay's own query and transaction (connects per second).

    The same rows as `unread_count` and `deliveries_to_replay`, written out: every connect runs it, and
    the ORM took ~1.3 ms of CPU to build the filtered aggregate, several times the query's own cost.
    """
    with connection.cursor() as cursor:
        cursor.execute(_inbox_summary_sql(), [*_inbox_counts_parameters(), user_id])
        unread, unacknowledged = cursor.fetchone()
    return InboxSummary(unread=unread, unacknowledged=unacknowledged)


@functools.cache
def _inbox_summary_sql() -> str:
    return _inbox_counts_sql(recipient="%s")


def _inbox_counts_sql(*, recipient: str) -> str:
    """Both counts in one pass over the deliveries of `recipient` (SQL: a parameter, or a column of an outer query);
    its parameters are `_inbox_counts_parameters()`, then the recipient's if it is one."""
    delivery, notification = Columns(Delivery), Columns(Notification)
    statuses = ", ".join(["%s"] * len(UNACKNOWLEDGED_STATUSES))
    return f"""
        SELECT COUNT(*) FILTER (WHERE d.{delivery.read_at} IS NULL AND d.{delivery.status} <> %s) AS unread,
               COUNT(*) FILTER (WHERE d.{delivery.status} IN ({statuses})) AS unacknowledged
          FROM {delivery.table} d JOIN {notification.table} n ON n.{notification.id} = d.{delivery.notification}
         WHERE (n.{notification.expires_at} IS NULL OR n.{notification.expires_at} > %s)
           AND d.{delivery.recipient} = {recipient}
    """  # noqa: S608 - identifiers come from model _meta; values are parameters


def _inbox_counts_parameters() -> list:
    now = Delivery._meta.get_field("created_at").get_db_prep_value(timezone.now(), connection)
    return [Delivery.Status.RESOLVED, *UNACKNOWLEDGED_STATUSES, now]


@dataclass(frozen=True)
class ConnectSummary:
    """What the hub reads from the database when a client connects (see `connect_summary`)."""

    user: AbstractUser
    department_ids: list[int]  # ascending, as `workflow.selectors.department_ids_of`
    inbox: InboxSummary


def connect_summary(user_id: int) -> ConnectSummary | None:
    """The user (None if there is no such user), their departments and their `inbox_summary`, in one query.

    Every connect runs it: the same rows as the user's lookup by the token's
    claim (simplejwt's `USER_ID_FIELD`), `department_ids_of` and
    `inbox_summary`, written out, because three queries through the ORM cost a
    connect more CPU than everything else it asked the database.
    """
    sql, attnames = _connect_summary_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*_inbox_counts_parameters(), user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    *user_values, department_ids, unread, unacknowledged = row
    user = get_user_model().from_db(connection.alias, attnames, user_values)
    return ConnectSummary(
        user=user,
        department_ids=list(department_ids),
        inbox=InboxSummary(unread=unread, unacknowledged=unacknowledged),
    )


@functools.cache
def _connect_summary_sql() -> tuple[str, list[str]]:
    """The statement of `connect_summary`, and the attribute names of the user columns it selects first."""
    from rest_framework_simplejwt.settings import api_settings

    User = get_user_model()
    user, membership = Columns(User), Columns(DepartmentMembership)
    fields = User._meta.concrete_fields
    user_columns = ", ".join(f"u.{getattr(user, field.name)}" for field in fields)
    pk = getattr(user, User._meta.pk.name)
    sql = f"""
        SELECT {user_columns},
               ARRAY(SELECT m.{membership.department} FROM {membership.table} m
                      WHERE m.{membership.user} = u.{pk} ORDER BY m.{membership.department}),
               inbox.unread, inbox.unacknowledged
          FROM {user.table} u CROSS JOIN LATERAL ({_inbox_counts_sql(recipient=f"u.{pk}")}) inbox
         WHERE u.{getattr(user, api_settings.USER_ID_FIELD)} = %s
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
    return sql, [field.attname for field in fields]


def usernames_of(user_ids: Iterable[int]) -> dict[int, str]:
    """Username by user id, for lists of who is present (unknown ids are left out)."""
    User = get_user_model()
    return dict(User.objects.filter(pk__in=list(user_ids)).values_list("pk", User.USERNAME_FIELD))


def inbox_of(user_id: int) -> QuerySet[Delivery]:
    """A user's inbox: their deliveries, newest first, expired ones left out (as in `unread_count`)."""
    now = timezone.now()
    return deliveries_of(user_id).filter(Q(notification__expires_at__isnull=True) | Q(notification__expires_at__gt=now))


@dataclass(frozen=True)
class InboxPosition:
    """A delivery's place in the inbox's reading order: unread before read (or resolved), then newest first
    (ties by id)."""

    read: bool
    created_at: datetime
    delivery_id: int

    @classmethod
    def of(cls, delivery: Delivery) -> "InboxPosition":
        return cls(read=not delivery.is_unread, created_at=delivery.created_at, delivery_id=delivery.pk)


@dataclass(frozen=True)
class InboxPage:
    deliveries: Sequence[Delivery]
    older: InboxPosition | None  # continue after this for the next page; None: this is the last
    newer: InboxPosition | None  # continue before this for the previous page; None: this is the first


def inbox_page(
    user_id: int,
    *,
    event: str | None = None,
    unread_only: bool = False,
    after: InboxPosition | None = None,
    before: InboxPosition | None = None,
    size: int = 25,
) -> InboxPage:
    """One page of a user's inbox in reading order (unread first, then newest), by keyset: the page that follows
    `after`, the one that precedes `before`, or the first. Filters: one event name, unread ones only."""
    deliveries = (
        inbox_of(user_id)
        .annotate(read_rank=Case(When(UNREAD_DELIVERIES, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("read_rank", "-created_at", "-id")
    )
    if event:
        deliveries = deliveries.filter(notification__event=event)
    if unread_only:
        deliveries = deliveries.filter(UNREAD_DELIVERIES)
    if before is not None:
        rows = list(deliveries.filter(_inbox_beyond(before, older=False)).reverse()[: size + 1])
        if rows:  # else nothing is newer any more (read since, or expired): the first page
            more_newer = len(rows) > size
            rows = rows[:size][::-1]
            return InboxPage(
                deliveries=rows,
                older=InboxPosition.of(rows[-1]),
                newer=InboxPosition.of(rows[0]) if more_newer else None,
            )
    if after is not None:
        deliveries = deliveries.filter(_inbox_beyond(after, older=True))
    rows = list(deliveries[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return InboxPage(
        deliveries=rows,
        older=InboxPosition.of(rows[-1]) if rows and more_older else None,
        newer=InboxPosition.of(rows[0]) if rows and after is not None else after,
    )


def _inbox_beyond(position: InboxPosition, *, older: bool) -> Q:
    """The deliveries after `position` in reading order (older: True), or before it (False)."""
    rank = int(position.read)
    rank_side, time_side = ("gt", "lt") if older else ("lt", "gt")
    return (
        Q(**{f"read_rank__{rank_side}": rank})
        | Q(read_rank=rank, **{f"created_at__{time_side}": position.created_at})
        | Q(read_rank=rank, created_at=position.created_at, **{f"id__{time_side}": position.delivery_id})
    )


def inbox_event_names(user_id: int) -> list[str]:
    """The event names in a user's inbox, sorted: what their inbox can be filtered by."""
    return list(
        inbox_of(user_id).order_by("notification__event").values_list("notification__event", flat=True).distinct()
    )


def notifications_published_visible_to(user: AbstractUser) -> QuerySet[Notification]:
    """Notifications whose delivery status `user` may follow: what they published; staff see all."""
    if not user.is_active:
        return Notification.objects.none()
    if user.is_staff:
        return Notification.objects.all()
    return Notification.objects.filter(published_by_id=user.pk)


def delivery_status_of(notification_id: uuid.UUID) -> QuerySet[Delivery]:
    """Every recipient's delivery of one notification with its attempt log, in recipient order."""
    return (
        Delivery.objects.filter(notification_id=notification_id)
        .select_related("recipient")
        .prefetch_related(Prefetch("attempt_log", queryset=DeliveryAttempt.objects.select_related("device")))
    )


@dataclass(frozen=True)
class DeliveryCounts:
    by_status: dict[str, int]  # every status, zeros included
    pushed: int  # pushed through FCM (or simulated), whatever the status now: a late ack keeps its push


def delivery_counts(notification_id: uuid.UUID) -> DeliveryCounts:
    """How many deliveries of one notification are in each status, and how many were pushed, in one query."""
    by_status = dict.fromkeys(Delivery.Status.values, 0)
    rows = (
        Delivery.objects.filter(notification_id=notification_id)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"), pushed=Count("id", filter=Q(pushed_at__isnull=False)))
    )
    pushed = 0
    for status, count, pushed_count in rows:
        by_status[status] = count
        pushed += pushed_count
    return DeliveryCounts(by_status=by_status, pushed=pushed)


@dataclass(frozen=True)
class RecipientReferences:
    """What user and department references name, read at once: {reference: id} of those that name a row."""

    users: dict[int | str, int]
    departments: dict[int | str, int]

    def resolve(
        self, *, users: Iterable[int | str] = (), departments: Iterable[int | str] = ()
    ) -> tuple[set[int], set[int]]:
        """The ids of some of the references read; raises `UnknownRecipients` listing every reference that
        matched nothing, as the caller wrote it."""
        users, departments = list(dict.fromkeys(users)), list(dict.fromkeys(departments))
        unknown_users = [reference for reference in users if reference not in self.users]
        unknown_departments = [reference for reference in departments if reference not in self.departments]
        if unknown_users or unknown_departments:
            raise UnknownRecipients(user_ids=unknown_users, department_ids=unknown_departments)
        user_ids = {self.users[reference] for reference in users}
        return user_ids, {self.departments[reference] for reference in departments}


def recipient_references(
    *, users: Iterable[int | str] = (), departments: Iterable[int | str] = ()
) -> RecipientReferences:
    """Read what the references name, one query per kind however many publishes they come from (a batch's)."""
    User = get_user_model()
    return RecipientReferences(
        users=_resolve(User.objects.all(), User.USERNAME_FIELD, set(users)),
        departments=_resolve(Department.objects.all(), "code", set(departments)),
    )


def _resolve(queryset: QuerySet, name_field: str, references: set[int | str]) -> dict[int | str, int]:
    """{reference: id} for the references that name a row, in one query."""
    ids = {reference for reference in references if isinstance(reference, int)}
    names = {reference for reference in references if isinstance(reference, str)}
    if not ids and not names:
        return {}
    matches = Q()  # only the lookups there are references for: cheaper to build on every publish
    if ids:
        matches |= Q(pk__in=ids)
    if names:
        matches |= Q(**{f"{name_field}__in": names})
    rows = queryset.filter(matches).values_list("pk", name_field)
    found: dict[int | str, int] = {}
    for pk, name in rows:
        if pk in ids:
            found[pk] = pk
        if name in names:
            found[name] = pk
    return found


def devices_of(user_id: int) -> QuerySet[Device]:
    """A user's registered devices, active or not, most recently seen first."""
    return Device.objects.filter(user_id=user_id).order_by("-last_seen_at", "-id")


def user_may_publish(user: AbstractUser) -> bool:
    """Whether a user holds `notifications.publish_notification`: directly, through a group, or as an active
    superuser. Being staff is not enough; what they may publish is their scope's to say.

    The same answer as `user.has_perm("notifications.publish_notification")` with the default ModelBackend,
    in one query instead of two (direct and group permissions) on every publish. The query is written out:
    the ORM's six-table join with an OR cost ~1 ms of the web process's CPU to build and PostgreSQL ~2 ms to
    plan, on every publish request; this costs a tenth of that.
    """
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    with connection.cursor() as cursor:
        cursor.execute(may_publish_sql(), ["notifications", "publish_notification", user.pk, user.pk])
        (may_publish,) = cursor.fetchone()
    return may_publish


@functools.cache
def may_publish_sql() -> str:
    """Does the user (3rd and 4th parameters) hold the permission (app label, codename) directly or through a group?"""
    User = get_user_model()
    perm, content_type = Columns(Permission), Columns(ContentType)
    user_perm, user_group, group_perm = (
        Columns(User.user_permissions.through),
        Columns(User.groups.through),
        Columns(Group.permissions.through),
    )
    return f"""
        SELECT EXISTS (
            SELECT 1 FROM {perm.table} p JOIN {content_type.table} ct ON ct.{content_type.id} = p.{perm.content_type}
             WHERE ct.{content_type.app_label} = %s AND p.{perm.codename} = %s
               AND (EXISTS (SELECT 1 FROM {user_perm.table} up
                             WHERE up.{user_perm.user} = %s AND up.{user_perm.permission} = p.{perm.id})
                    OR EXISTS (SELECT 1 FROM {user_group.table} ug
                                 JOIN {group_perm.table} gp ON gp.{group_perm.group} = ug.{user_group.group}
                                WHERE ug.{user_group.user} = %s AND gp.{group_perm.permission} = p.{perm.id}))
        )
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
