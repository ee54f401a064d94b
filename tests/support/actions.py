"""A publisher's notification with actions, as the action tests publish it (the publisher needs an ActionCallback)."""

from notifications.layer_messages import NotificationAction
from notifications.models import Notification
from notifications.services import notification_publish


def action(action_id: str, label: str, *, requires_comment: bool = False) -> NotificationAction:
    return {"id": action_id, "label": label, "requires_comment": requires_comment}


def invoice_with_actions(
    *, publisher, recipient, actions: list[NotificationAction], title: str = "Invoice 42 is overdue", **fields
) -> Notification:
    """An `InvoiceOverdue` from `publisher` to `recipient` offering `actions`."""
    return notification_publish(
        event="InvoiceOverdue",
        title=title,
        user_ids=[recipient.pk],
        published_by_id=publisher.pk,
        actions=actions,
        **fields,
    )
