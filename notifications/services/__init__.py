"""Writes of the notifications domain, one module per concern."""

from notifications.services.deliveries import (
    deliveries_mark_all_read,
    deliveries_mark_sent,
    delivery_acknowledge,
    delivery_mark_read,
)
from notifications.services.publish import notification_publish
from notifications.services.publish_request import (
    PublishResult,
    notification_publish_replay,
    notification_publish_requested,
)
from notifications.services.replay import ReplayPage, deliveries_replay_page
from notifications.services.workflow_events import (
    document_approved_publish,
    document_rejected_publish,
    new_task_publish,
)

__all__ = [
    "PublishResult",
    "ReplayPage",
    "deliveries_mark_all_read",
    "deliveries_mark_sent",
    "deliveries_replay_page",
    "delivery_acknowledge",
    "delivery_mark_read",
    "document_approved_publish",
    "document_rejected_publish",
    "new_task_publish",
    "notification_publish",
    "notification_publish_replay",
    "notification_publish_requested",
]
