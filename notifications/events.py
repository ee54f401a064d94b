"""The only module that talks to the channel layer.

It names the groups (from integer ids only, never from client input) and
publishes to them. Layer messages' `type` names the consumer handler
(`notification.created` → `notification_created`). Everything here runs after
the publishing transaction has committed: a rolled-back change never reaches a
socket.
"""

from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from notifications.models import Notification

NOTIFICATION_CREATED = "notification.created"
NOTIFICATIONS_READ = "notifications.read"


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


def send_notification(*, payload: dict, user_ids: Iterable[int]) -> None:
    """Hand a notification to the live connections of `user_ids` (raises if the layer is down)."""
    message = {"type": NOTIFICATION_CREATED, "notification": payload}
    _group_send_many([(user_group(user_id), message) for user_id in user_ids])


def notifications_read_on_commit(
    *, user_id: int, notification_ids: list[str], unread_count: int, origin: str | None = None
) -> None:
    """After commit, tell the user's connections (but `origin`) which notifications were read."""
    message = {
        "type": NOTIFICATIONS_READ,
        "ids": notification_ids,
        "unread_count": unread_count,
        "origin": origin,
    }

    def send_after_commit() -> None:
        _group_send_many([(user_group(user_id), message)])

    transaction.on_commit(send_after_commit, robust=True)


def _group_send_many(sends: list[tuple[str, dict]]) -> None:
    if not sends:
        return
    layer = get_channel_layer()

    async def send_all() -> None:
        for group, message in sends:
            await layer.group_send(group, message)

    async_to_sync(send_all)()
