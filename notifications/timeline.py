"""One delivery's story in time order, in words: what the admin's delivery page shows as a timeline.

Built from the delivery's row and its attempt log (DeliveryAttempt), nothing else. What the ledger cannot tell:
- which connection, hub process or client got a WebSocket send: sends are recorded in bulk by the publisher, the
  dispatcher and the sweep (`deliveries_mark_sent`), not by the hub that wrote the frame;
- whether a send was a live send, a retry or a replay on connect: all three are logged as the same "sent"
  attempt (a replay is only recognisable as a send at a later time than the first);
- an admin's "retry now": it moves `next_attempt_at` and logs nothing, so only the send it led to shows;
- which device or connection acknowledged or read it: only the time is kept;
- anything the retention pruner has deleted (settled deliveries and their attempts, after their retention).
"""

from dataclasses import dataclass
from datetime import datetime

from notifications.console.times import at_second
from notifications.models import ActionPerformance, Delivery, DeliveryAttempt, person_name

Outcome = DeliveryAttempt.Outcome


@dataclass(frozen=True)
class Entry:
    """One thing that happened to a delivery: when, what in words, and the detail (empty if none)."""

    at: datetime
    what: str
    detail: str = ""
    kind: str = "info"  # how the page marks it: info, sent, success, push, simulated, warning, failure

    @property
    def at_text(self) -> str:
        return at_second(self.at)


_ATTEMPT_WORDS: dict[str, tuple[str, str]] = {
    Outcome.SENT: ("Sent over WebSocket", "sent"),
    Outcome.NO_CONNECTION: ("No live connection: nothing sent over WebSocket", "warning"),
    Outcome.ACCEPTED: ("Pushed through FCM: accepted", "push"),
    Outcome.SIMULATED: ("Simulated push (log backend: nothing reached a phone)", "simulated"),
    Outcome.RETRY: ("FCM answered with a temporary error: will retry", "warning"),
    Outcome.REJECTED: ("FCM rejected the push", "failure"),
    Outcome.DEVICE_GONE: ("FCM: the device is unregistered (deactivated here)", "failure"),
    Outcome.SUPERSEDED: ("Pushed through FCM while the work was being done: superseded", "push"),
    Outcome.REPLACED: ("Replaced on the device by the resolution's push", "push"),
    Outcome.DEFERRED: ("Push held: the recipient's quiet hours", "warning"),
}


def delivery_timeline(delivery: Delivery) -> list[Entry]:
    """Everything the ledger knows happened to `delivery`, oldest first (ties keep the order they happened in).

    Three queries: the delivery with its notification, publisher and recipient, its attempts with devices, and
    the action its recipient performed from it (if any).
    """
    delivery = Delivery.objects.select_related("notification__published_by", "recipient").get(pk=delivery.pk)
    notification = delivery.notification
    publisher = (
        f"published by {person_name(notification.published_by)}"
        if notification.published_by is not None
        else "published by the workflow"
    )
    if not notification.push_allowed:
        publisher += "; in-app only: never pushed"
    entries = [
        Entry(notification.created_at, f"Published: {notification.title}", f"{notification.event}, {publisher}"),
        Entry(delivery.created_at, f"Delivery created for {person_name(delivery.recipient)}"),
    ]
    sends = 0
    for attempt in delivery.attempt_log.select_related("device").order_by("created_at", "id"):
        what, kind = _ATTEMPT_WORDS.get(attempt.outcome, (attempt.get_outcome_display(), "info"))
        if attempt.outcome == Outcome.SENT:
            sends += 1
            again = ": a retry or a replay on connect, the earlier one was not acknowledged" if sends > 1 else ""
            what = f"{what} (send {sends}{again})"
        entries.append(Entry(attempt.created_at, what, _attempt_detail(attempt), kind))
    if delivery.acknowledged_at is not None:
        late = delivery.pushed_at is not None and delivery.acknowledged_at > delivery.pushed_at
        entries.append(
            Entry(
                delivery.acknowledged_at, "Acknowledged late, after the push" if late else "Acknowledged", "", "success"
            )
        )
    if delivery.read_at is not None:
        entries.append(Entry(delivery.read_at, "Read", "", "success"))
    performance = ActionPerformance.objects.filter(
        notification_id=delivery.notification_id, user_id=delivery.recipient_id
    ).first()
    if performance is not None:
        entries.append(_action_entry(performance))
    if delivery.failed_at is not None and delivery.failure_reason == Delivery.FailureReason.IN_APP_ONLY:
        # Not a fault: where a push would come, an in-app only notification stops (services/pushes.py).
        entries.append(
            Entry(delivery.failed_at, "Closed without a push: in-app only", "the inbox and the next connection show it")
        )
    elif delivery.failed_at is not None:
        reason = delivery.get_failure_reason_display() or "no reason recorded"
        entries.append(Entry(delivery.failed_at, f"Failed: {reason}", delivery.last_error, "failure"))
    if delivery.resolved_at is not None:
        entries.append(
            Entry(
                delivery.resolved_at,
                f"Resolved: {notification.get_resolution_display() or 'the work it was about is done'}",
                "Nothing more is sent or pushed; a push already on a phone is replaced.",
                "success",
            )
        )
    # sorted() is stable: entries at the same second stay in the order they were appended (publish, create, log).
    return sorted(entries, key=lambda entry: entry.at)


def _action_entry(performance: ActionPerformance) -> Entry:
    """The action the recipient performed from the notification, and whether its publisher heard of it."""
    parts = [f"“{performance.comment}”"] if performance.comment else []
    if performance.callback_status:
        calls = f"{performance.callback_attempts} call{'s' if performance.callback_attempts != 1 else ''}"
        parts.append(f"publisher callback: {performance.get_callback_status_display().lower()} ({calls})")
        if performance.callback_last_error:
            parts.append(performance.callback_last_error)
    failed = performance.callback_status == ActionPerformance.CallbackStatus.FAILED
    return Entry(
        performance.performed_at,
        f"Action performed: {performance.action} ({performance.get_outcome_display().lower()})",
        "; ".join(parts),
        "failure" if failed else "success",
    )


def _attempt_detail(attempt: DeliveryAttempt) -> str:
    parts = []
    if attempt.device is not None:
        device = attempt.device
        parts.append(f"{device.get_platform_display()} device, install {device.app_install_id}")
    elif attempt.channel == DeliveryAttempt.Channel.FCM and attempt.outcome != Outcome.DEFERRED:
        parts.append("device since deleted")  # a held push names no device: it was for all of them
    if attempt.error:
        parts.append(attempt.error)
    return "; ".join(parts)
