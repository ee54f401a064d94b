"""Reads for the admin's notification page: a count per status label, the recipients, the links out.

Each is one query on the `unique_delivery_per_recipient` index (it leads with the notification), whatever the
number of recipients.
"""

import uuid
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from notifications.models import STATUS_LABELS, Delivery

_STATUS_KIND_FILTERS = {
    "pending": Q(status=Delivery.Status.PENDING),
    "sent": Q(status=Delivery.Status.SENT),
    "acknowledged": Q(status=Delivery.Status.ACKNOWLEDGED, pushed_at__isnull=True),
    "read": Q(status=Delivery.Status.READ, pushed_at__isnull=True),
    "pushed": Q(status=Delivery.Status.PUSHED, push_simulated=False),
    "pushed_simulated": Q(status=Delivery.Status.PUSHED, push_simulated=True),
    "acknowledged_after_push": Q(status=Delivery.Status.ACKNOWLEDGED, pushed_at__isnull=False, push_simulated=False),
    "acknowledged_after_simulated_push": Q(
        status=Delivery.Status.ACKNOWLEDGED, pushed_at__isnull=False, push_simulated=True
    ),
    "read_after_push": Q(status=Delivery.Status.READ, pushed_at__isnull=False, push_simulated=False),
    "read_after_simulated_push": Q(status=Delivery.Status.READ, pushed_at__isnull=False, push_simulated=True),
    "failed": Q(status=Delivery.Status.FAILED),
    "resolved": Q(status=Delivery.Status.RESOLVED),
}
assert _STATUS_KIND_FILTERS.keys() == STATUS_LABELS.keys()


def status_kind_filter(kind: str) -> Q:
    """The deliveries whose `status_kind` is `kind` (a key of STATUS_LABELS)."""
    return _STATUS_KIND_FILTERS[kind]


def notification_status_summary(notification_id: uuid.UUID) -> list[dict]:
    """[{"label", "kind", "filter", "failure_reason", "count"}], the most common first: how many deliveries of
    the notification are in each status, as the labels say it (a failure per reason)."""
    rows = (
        Delivery.objects.filter(notification_id=notification_id)
        .annotate(was_pushed=ExpressionWrapper(Q(pushed_at__isnull=False), output_field=BooleanField()))
        .values("status", "push_simulated", "failure_reason", "was_pushed")
        .annotate(count=Count("id"))
        .order_by()
    )
    now = timezone.now()
    summary: dict[str, dict] = {}
    for row in rows:  # at most a few dozen groups, whatever the recipients
        delivery = Delivery(
            status=row["status"],
            push_simulated=row["push_simulated"],
            failure_reason=row["failure_reason"],
            pushed_at=now if row["was_pushed"] else None,
        )
        label = delivery.status_label
        entry = summary.setdefault(
            label,
            {
                "label": label,
                "kind": delivery.status_kind,
                "filter": delivery.status_kind,
                "failure_reason": row["failure_reason"] if row["status"] == Delivery.Status.FAILED else "",
                "count": 0,
            },
        )
        entry["count"] += row["count"]
    return sorted(summary.values(), key=lambda entry: (-entry["count"], entry["label"]))


def notification_recipients(notification_id: uuid.UUID, *, search: str = "") -> QuerySet[Delivery]:
    """The notification's deliveries with their recipients, by username; `search` matches username or name."""
    deliveries = Delivery.objects.filter(notification_id=notification_id).select_related("recipient")
    if search:
        deliveries = deliveries.filter(
            Q(recipient__username__icontains=search)
            | Q(recipient__first_name__icontains=search)
            | Q(recipient__last_name__icontains=search)
        )
    return deliveries.order_by("recipient__username", "id")


def why_url(*, username: str, notification_id: uuid.UUID) -> str:
    """The console's "why was (or wasn't) this user notified?" page for one recipient and notification."""
    return reverse("admin:console-why") + "?" + urlencode({"user": username, "notification": str(notification_id)})


def has_active_recipients(*, user_ids: list[int], department_ids: list[int]) -> bool:
    """Whether a publish to these users and departments would reach anyone: an active user among them, or an
    active member of one of the departments (the publish service skips inactive users)."""
    reached = Q(pk__in=user_ids) | Q(department_memberships__department_id__in=department_ids)
    return get_user_model().objects.filter(reached, is_active=True).exists()
