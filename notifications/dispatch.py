"""What happens to a notification once its transaction has committed.

Recipients with a live connection (per the presence registry) get it over the
channel layer and their deliveries become `sent`, which starts the ack clock.
Everyone else stays `pending` for the offline fallback. If Redis is down the
rows stay `pending` and the retry sweep takes over: nothing is lost, because
the rows were committed before anything here ran.
"""

import logging

from django.db import transaction

from notifications import events, presence
from notifications.models import Notification
from notifications.services.deliveries import deliveries_mark_sent

logger = logging.getLogger(__name__)


def notification_dispatch_on_commit(*, notification: Notification, recipient_ids: list[int]) -> None:
    """Schedule the dispatch for when the current transaction commits."""
    payload = events.notification_payload(notification)

    # robust: the rows are committed whatever happens here; a failure is logged and
    # left to replay on connect and the retry sweep, never raised into the caller.
    # (A def, not functools.partial: Django's robust on_commit logs the callback's __qualname__.)
    def dispatch_after_commit() -> None:
        notification_dispatch(payload=payload, recipient_ids=recipient_ids)

    transaction.on_commit(dispatch_after_commit, robust=True)


def notification_dispatch(*, payload: dict, recipient_ids: list[int]) -> None:
    """Send to the recipients who are online now and record those sends."""
    online = presence.online_user_ids(recipient_ids)
    if online:
        events.send_notification(payload=payload, user_ids=sorted(online))
        deliveries_mark_sent(notification_id=payload["id"], recipient_ids=online)
    logger.debug("dispatched %s: %d online of %d", payload["id"], len(online), len(recipient_ids))
