"""What happens to a notification once its transaction has committed.

Recipients with a live connection (per the presence registry) get it over the
channel layer. Publishing reads presence before it writes the rows
(`presence.online_recipients`), so theirs are written `sent` already, which starts the
ack clock (dispatch logs that first send once it is made, last: the commit does not
wait for 1,000 attempt rows); after the commit dispatch looks again for the others (someone may
have connected meanwhile) and those it finds now get it too. Everyone else
gets the FCM fallback at once: one push task per delivery is queued. If Redis
(layer, presence or broker) is down, or PostgreSQL drops the connection of the
dispatch's bookkeeping, the retry sweep takes over: `pending`
rows after NOTIFY_DISPATCH_GRACE, `sent` ones (only the send failed) after
the ack timeout. Nothing is lost, because the rows were committed before
anything here ran.

A notification for a department goes to the department's group once, naming
the recipients it is for, instead of once per member. Only recipients whose
every live connection sits in that group (per presence) are routed that way;
the rest (e.g. added to the department after they connected) get their own
send. The hub drops a notification it has already shown, so overlapping routes
never show it twice.

The retry sweep sends through here too (`deliveries_resend_on_commit`,
`pushes_enqueue_on_commit`), and a resolution queues its replacement pushes
(`replacement_pushes_enqueue_on_commit`), and a performed action its publisher's callback
(`action_callback_enqueue_on_commit`), so every way out of the process is in this module.
"""

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable

from celery import current_app
from django.db import connection, transaction

from core.database import TRANSIENT_DATABASE_ERRORS
from notifications import layer, presence
from notifications.layer_messages import NotificationPayload
from notifications.models import Delivery, Notification
from notifications.services.deliveries import (
    deliveries_log_first_sends,
    deliveries_log_offline_pending,
    deliveries_mark_sent,
    deliveries_postpone,
)

logger = logging.getLogger(__name__)

# The push task (notifications/tasks.py), queued by its name: the task runs services that dispatch through
# this module, so this module does not import the task's.
PUSH_TASK = "notifications.push_delivery"
REPLACEMENT_PUSH_TASK = "notifications.push_resolution"
ACTION_CALLBACK_TASK = "notifications.call_action_back"


def notification_dispatch(
    *, payload: NotificationPayload, recipient_ids: Collection[int], online: presence.OnlineRecipients
) -> None:
    """Send to the recipients who were online at publish (their rows say `sent` already), then look again
    for the rest: send to those online now, and queue pushes for everyone else.

    The second look is what keeps the hub's promise to a client connecting while the notification was being
    published: it registers presence before it reads its replay (`HubSession.open`), so either its replay ran
    after the commit and shows the notification, or its presence is there for this look, after the commit.
    If a send fails or the layer does not answer in time (`layer.send_notification_now` logs it and returns False),
    the `sent` rows come due for the retry sweep after the ack timeout, and the late ones stay `pending` for it.
    """
    try:
        _dispatch(payload=payload, recipient_ids=recipient_ids, online=online)
    except TRANSIENT_DATABASE_ERRORS as error:  # PostgreSQL restarted under the bookkeeping; the rows are committed
        connection.close()  # back to the pool, which drops it if broken
        logger.warning(
            "dispatch of %s cut short by the database (%s); the retry sweep takes over", payload["id"], error
        )


def _dispatch(
    *, payload: NotificationPayload, recipient_ids: Collection[int], online: presence.OnlineRecipients
) -> None:
    if online.connection_counts:
        reached_by_department = set().union(*online.department_routes.values())
        layer.send_notification_now(
            payload=payload,
            user_ids=sorted(set(online.connection_counts) - reached_by_department),
            department_recipients=online.department_routes,
        )
    rest = [user_id for user_id in recipient_ids if user_id not in online.connection_counts]
    found = presence.lookup(rest) if rest else presence.Presence(connection_counts={})
    late = found.connection_counts
    if late and layer.send_notification_now(payload=payload, user_ids=sorted(late)):
        deliveries_mark_sent(notification_ids=[payload["id"]], recipient_ids=set(late))
    offline = [user_id for user_id in rest if user_id not in late]
    if offline and not found.complete:
        # Redis has just restarted: these users may be connected to a process that has not put its connections
        # back yet. Send it to their groups anyway (their process may be listening again already) and hold the
        # push until the registry is complete; then the sweep resends or pushes (a connection shows it once).
        layer.send_notification_now(payload=payload, user_ids=offline)
        deliveries_postpone(notification_id=payload["id"], recipient_ids=offline, seconds=found.incomplete_for)
    elif offline:
        delivery_ids = deliveries_log_offline_pending(notification_id=payload["id"], recipient_ids=offline)
        pushes_enqueue(delivery_ids=delivery_ids)
    # Last, once every recipient is on its way: the online ones' first sends, which their rows count already.
    deliveries_log_first_sends(notification_id=payload["id"], recipient_ids=online.connection_counts.keys())
    logger.debug(
        "dispatched %s: %d online, %d came online, %d pushed",
        payload["id"],
        len(online.connection_counts),
        len(late),
        len(offline),
    )


def pushes_enqueue(*, delivery_ids: Iterable[int]) -> None:
    """Queue one push task per delivery (each task claims its delivery, so a duplicate is harmless)."""
    for delivery_id in delivery_ids:
        current_app.send_task(PUSH_TASK, args=[delivery_id])


def pushes_enqueue_on_commit(*, delivery_ids: Collection[int]) -> None:
    if not delivery_ids:
        return
    delivery_ids = list(delivery_ids)

    def enqueue_after_commit() -> None:
        pushes_enqueue(delivery_ids=delivery_ids)

    transaction.on_commit(enqueue_after_commit, robust=True)


def replacement_pushes_enqueue_on_commit(*, delivery_ids: Collection[int]) -> None:
    """After commit, queue the push that replaces each resolved delivery's push on its devices."""
    if not delivery_ids:
        return
    delivery_ids = list(delivery_ids)

    def enqueue_after_commit() -> None:
        for delivery_id in delivery_ids:
            current_app.send_task(REPLACEMENT_PUSH_TASK, args=[delivery_id])

    transaction.on_commit(enqueue_after_commit, robust=True)


def action_callback_enqueue_on_commit(*, performance_id: int) -> None:
    """After commit, queue the call that tells a publisher one of its notification's actions was performed."""

    def enqueue_after_commit() -> None:
        current_app.send_task(ACTION_CALLBACK_TASK, args=[performance_id])

    transaction.on_commit(enqueue_after_commit, robust=True)


def deliveries_resend_on_commit(*, deliveries: Collection[Delivery]) -> None:
    """After commit, send these deliveries (with their notifications loaded) over the WebSocket again.

    The sweep has recorded the resends in its transaction (`deliveries_mark_resent`). A connection that has
    shown the notification already drops the resend (`HubSession.notification_event`): a resend is for a
    send the layer lost (a Redis restart, a full channel), never a second copy for a client that has it and
    has not acknowledged yet (its ack may be on its way; one that never acks is pushed after the last send).
    """
    if not deliveries:
        return
    recipients_by_notification: dict[Notification, list[int]] = defaultdict(list)
    for delivery in deliveries:
        recipients_by_notification[delivery.notification].append(delivery.recipient_id)
    resends = [
        (layer.notification_payload(notification), recipient_ids)
        for notification, recipient_ids in recipients_by_notification.items()
    ]

    def resend_after_commit() -> None:
        for payload, recipient_ids in resends:
            # One the layer does not take is logged: the resend recorded by the claim comes due again.
            layer.send_notification_now(payload=payload, user_ids=recipient_ids)

    transaction.on_commit(resend_after_commit, robust=True)
