"""Writes of the notifications domain, one module per concern."""

from notifications.services.action_callbacks import action_callback_deliver
from notifications.services.actions import ActionResult, notification_action_perform
from notifications.services.deliveries import (
    AckOutcome,
    deliveries_acknowledge_many,
    deliveries_fail,
    deliveries_log_first_sends,
    deliveries_log_offline,
    deliveries_log_offline_pending,
    deliveries_mark_all_read,
    deliveries_mark_resent,
    deliveries_mark_sent,
    deliveries_retry_now,
    delivery_acknowledge,
    delivery_mark_read,
    delivery_not_found,
)
from notifications.services.devices import device_delete, device_register
from notifications.services.preferences import PreferencesRefused, preferences_update
from notifications.services.publish import notification_publish
from notifications.services.publish_batch import (
    PublishBatchItem,
    PublishBatchOutcome,
    notification_publish_batch_requested,
)
from notifications.services.publish_request import (
    PublishResult,
    notification_publish_repeated,
    notification_publish_requested,
)
from notifications.services.pushes import delivery_push, delivery_push_replacement
from notifications.services.recipients import recipient_deactivated
from notifications.services.replay import ReplayPage, deliveries_replay_page
from notifications.services.resolution import (
    ResolveResult,
    notification_retract,
    notifications_resolve,
    task_notifications_resolve,
)
from notifications.services.retention import retention_prune
from notifications.services.sweep import deliveries_sweep
from notifications.services.workflow_notifications import (
    document_approved_publish,
    document_rejected_publish,
    new_task_publish,
    task_delegated_publish,
    task_escalation_publish,
    task_reminder_publish,
)

__all__ = [
    "AckOutcome",
    "ActionResult",
    "PreferencesRefused",
    "PublishBatchItem",
    "PublishBatchOutcome",
    "PublishResult",
    "ReplayPage",
    "ResolveResult",
    "action_callback_deliver",
    "deliveries_acknowledge_many",
    "deliveries_fail",
    "deliveries_log_first_sends",
    "deliveries_log_offline",
    "deliveries_log_offline_pending",
    "deliveries_mark_all_read",
    "deliveries_mark_resent",
    "deliveries_mark_sent",
    "deliveries_replay_page",
    "deliveries_retry_now",
    "deliveries_sweep",
    "delivery_acknowledge",
    "delivery_mark_read",
    "delivery_not_found",
    "delivery_push",
    "delivery_push_replacement",
    "device_delete",
    "device_register",
    "document_approved_publish",
    "document_rejected_publish",
    "new_task_publish",
    "notification_action_perform",
    "notification_publish",
    "notification_publish_batch_requested",
    "notification_publish_repeated",
    "notification_publish_requested",
    "notification_retract",
    "notifications_resolve",
    "preferences_update",
    "recipient_deactivated",
    "retention_prune",
    "task_delegated_publish",
    "task_escalation_publish",
    "task_notifications_resolve",
    "task_reminder_publish",
]
