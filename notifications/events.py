"""The only module that talks to the channel layer.

It names the groups (from integer ids only, never from client input) and
publishes to them. Everything here runs after the publishing transaction has
committed: a rolled-back notification never reaches a socket.
"""

from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from notifications.models import Notification

NOTIFICATION_CREATED = "notification.created"


def user_group(user_id: int) -> str:
    return f"user.{int(user_id)}"


def department_group(department_id: int) -> str:
    return f"dept.{int(department_id)}"


def document_group(document_id: int) -> str:
    return f"doc.{int(document_id)}"


def notification_payload(notification: Notification) -> dict:
    """The notification as every transport carries it: built once, at publish time."""
    return {
        "id": str(notification.pk),
        "event": notification.event,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "document_id": notification.document_id,
        "priority": notification.priority,
        "created_at": notification.created_at.isoformat(),
        "expires_at": notification.expires_at.isoformat() if notification.expires_at else None,
    }


def notification_created_on_commit(*, notification: Notification, recipient_ids: list[int]) -> None:
    """Send the notification to its recipients' groups once the current transaction commits."""
    payload = notification_payload(notification)
    # robust: the rows are committed whatever happens here; a failed send is logged
    # and left to replay on connect and the retry sweep, never raised into the caller.
    transaction.on_commit(
        partial(_send_notification_created, payload=payload, recipient_ids=recipient_ids), robust=True
    )


def _send_notification_created(*, payload: dict, recipient_ids: list[int]) -> None:
    layer = get_channel_layer()
    message = {"type": NOTIFICATION_CREATED, "notification": payload}

    async def send_all() -> None:
        for user_id in recipient_ids:
            await layer.group_send(user_group(user_id), message)

    async_to_sync(send_all)()
