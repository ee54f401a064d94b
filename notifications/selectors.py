"""Read-side queries of the notifications domain. The hub and the API read through these."""

import uuid
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.models import Delivery

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
    now = timezone.now()
    return (
        Delivery.objects.filter(recipient_id=user_id, status__in=UNACKNOWLEDGED_STATUSES)
        .filter(Q(notification__expires_at__isnull=True) | Q(notification__expires_at__gt=now))
        .select_related("notification")
        .order_by("created_at", "id")
    )


def unread_count(user_id: int) -> int:
    """Deliveries the user has not read, expired ones left out."""
    now = timezone.now()
    return (
        Delivery.objects.filter(recipient_id=user_id, read_at__isnull=True)
        .filter(Q(notification__expires_at__isnull=True) | Q(notification__expires_at__gt=now))
        .count()
    )


def usernames_of(user_ids: Iterable[int]) -> dict[int, str]:
    """Username by user id, for lists of who is present (unknown ids are left out)."""
    User = get_user_model()
    return dict(User.objects.filter(pk__in=list(user_ids)).values_list("pk", User.USERNAME_FIELD))
