"""What a connecting client missed: the hub replays it page by page, oldest first."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from notifications import layer, selectors
from notifications.layer_messages import NotificationPayload
from notifications.models import Delivery
from notifications.services.deliveries import deliveries_mark_sent


@dataclass(frozen=True)
class ReplayPage:
    """Notifications a connecting client has not acknowledged, and where the next page starts (None: done)."""

    notifications: list[NotificationPayload]
    cursor: tuple[datetime, int] | None


@transaction.atomic
def deliveries_replay_page(*, user_id: int, after: tuple[datetime, int] | None = None, limit: int = 200) -> ReplayPage:
    """One page of the user's unacknowledged notifications, oldest first, for a connection to replay.

    Its open deliveries are recorded as sent: the user is online and is being
    handed them now, so the ack clock starts as for a live send.
    """
    deliveries = selectors.deliveries_to_replay(user_id)
    if after is not None:
        created_at, delivery_id = after
        deliveries = deliveries.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=delivery_id))
    page = list(deliveries[:limit])
    deliveries_mark_sent(
        recipient_ids=[user_id],
        notification_ids=[delivery.notification_id for delivery in page if delivery.status in Delivery.OPEN_STATUSES],
    )
    cursor = (page[-1].created_at, page[-1].id) if len(page) == limit else None
    return ReplayPage(
        notifications=[layer.notification_payload(delivery.notification) for delivery in page], cursor=cursor
    )
