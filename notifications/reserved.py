"""Names the system keeps for itself: no API publisher may use them, whatever its scope.

- Event names: the workflow's own notifications (a publisher could forge a `NewTask`), the SignalR targets that
  are not notifications (a client would run its `NotificationsRead` handler with the publisher's data) and the
  native protocol's frame types. Compared ignoring case: the JS SignalR client matches handler names so.
- Keys of `data` that the SignalR argument sets itself (`notificationId`, `timestamp`, ...): SignalR clients get
  data's keys at the argument's top level, beside those. Also compared ignoring case (the .NET client binds
  properties so). Native frames and FCM pushes carry data nested under a key of its own.

The workflow's notifications (services/workflow_notifications.py) pass no scope check: they are the system.
"""

from notifications.hub.native_frames import ServerFrame
from notifications.hub.signalr.protocol import (
    NON_NOTIFICATION_TARGETS,
    NOTIFICATION_DEFAULT_KEYS,
    NOTIFICATION_OWN_KEYS,
)

# The workflow's notifications, published by services/workflow_notifications.py (README, "Workflow events").
NEW_TASK_EVENT = "NewTask"
DOCUMENT_APPROVED_EVENT = "DocumentApproved"
DOCUMENT_REJECTED_EVENT = "DocumentRejected"
# To an approver who is out of office: their new task went to their delegate (in-app only, never pushed).
TASK_DELEGATED_EVENT = "TaskDelegated"
TASK_REMINDER_EVENT = "TaskReminder"
TASK_ESCALATED_EVENT = "TaskEscalated"
WORKFLOW_EVENTS = (
    NEW_TASK_EVENT,
    DOCUMENT_APPROVED_EVENT,
    DOCUMENT_REJECTED_EVENT,
    TASK_DELEGATED_EVENT,
    TASK_REMINDER_EVENT,
    TASK_ESCALATED_EVENT,
)

RESERVED_EVENT_NAMES = frozenset(
    name.casefold() for name in (*WORKFLOW_EVENTS, *NON_NOTIFICATION_TARGETS, *ServerFrame)
)
RESERVED_DATA_KEYS = frozenset(key.casefold() for key in (*NOTIFICATION_OWN_KEYS, *NOTIFICATION_DEFAULT_KEYS))


def is_reserved_event(event: str) -> bool:
    return event.casefold() in RESERVED_EVENT_NAMES


def reserved_keys_in(data: dict) -> list[str]:
    """The keys of `data` that are reserved, as written there, in data's order."""
    return [key for key in data if isinstance(key, str) and key.casefold() in RESERVED_DATA_KEYS]
