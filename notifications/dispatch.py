"""What happens to a notification once its transaction has committed.

Recipients with a live connection (per the presence registry) get it over the
channel layer and their deliveries become `sent`, which starts the ack clock.
Everyone else stays `pending` for the offline fallback. If Redis is down the
rows stay `pending` and the retry sweep takes over: nothing is lost, because
the rows were committed before anything here ran.

A notification for a department goes to the department's group once, naming
the recipients it is for, instead of once per member. Only recipients whose
every live connection sits in that group (per presence) are routed that way;
the rest (e.g. added to the department after they connected) get their own
send. The hub drops a notification it has already shown, so overlapping routes
never show it twice.
"""

import logging
from collections.abc import Collection, Mapping

from django.db import transaction

from notifications import events, presence
from notifications.models import Notification
from notifications.services.deliveries import deliveries_mark_sent

logger = logging.getLogger(__name__)


def notification_dispatch_on_commit(
    *,
    notification: Notification,
    recipient_ids: list[int],
    department_member_ids: Mapping[int, Collection[int]] | None = None,
) -> None:
    """Schedule the dispatch for when the current transaction commits.

    `department_member_ids` maps each targeted department to its members among `recipient_ids`.
    """
    payload = events.notification_payload(notification)

    # robust: the rows are committed whatever happens here; a failure is logged and
    # left to replay on connect and the retry sweep, never raised into the caller.
    # (A def, not functools.partial: Django's robust on_commit logs the callback's __qualname__.)
    def dispatch_after_commit() -> None:
        notification_dispatch(payload=payload, recipient_ids=recipient_ids, department_member_ids=department_member_ids)

    transaction.on_commit(dispatch_after_commit, robust=True)


def notification_dispatch(
    *,
    payload: dict,
    recipient_ids: Collection[int],
    department_member_ids: Mapping[int, Collection[int]] | None = None,
) -> None:
    """Send to the recipients who are online now and record those sends."""
    live = presence.live_connection_counts(recipient_ids)
    if live:
        department_recipients = _department_routes(live, department_member_ids or {})
        reached_by_department = set().union(*department_recipients.values())
        events.send_notification(
            payload=payload,
            user_ids=sorted(set(live) - reached_by_department),
            department_recipients=department_recipients,
        )
        deliveries_mark_sent(notification_id=payload["id"], recipient_ids=set(live))
    logger.debug("dispatched %s: %d online of %d", payload["id"], len(live), len(recipient_ids))


def _department_routes(
    live: Mapping[int, int], department_member_ids: Mapping[int, Collection[int]]
) -> dict[int, set[int]]:
    """Per department, the online members that one send to its group reaches on every connection."""
    if not department_member_ids:
        return {}
    in_groups = presence.department_connection_counts(department_member_ids.keys())
    routes: dict[int, set[int]] = {}
    routed: set[int] = set()
    for department_id, member_ids in department_member_ids.items():
        connections = in_groups.get(department_id, {})
        reached = {
            user_id
            for user_id in member_ids
            if user_id in live and user_id not in routed and connections.get(user_id, 0) >= live[user_id]
        }
        if reached:
            routes[department_id] = reached
            routed |= reached
    return routes
