"""Helpers for sweep tests: deliveries due for a push, and sweeps started at the same instant."""

import threading
from datetime import timedelta

from django.utils import timezone

from notifications.models import Delivery, Notification
from notifications.services import deliveries_sweep
from tests.support.threads import Worker


def due_for_push(users, *, websocket_sends: int = 1) -> list[int]:
    """Deliveries sent `websocket_sends` times, never acknowledged, due now; their recipients are offline."""
    notification = Notification.objects.create(event="NewTask", title="Approve")
    due = timezone.now() - timedelta(seconds=1)
    Delivery.objects.bulk_create(
        Delivery(
            notification=notification,
            recipient=user,
            status=Delivery.Status.SENT,
            attempts=websocket_sends,
            next_attempt_at=due,
        )
        for user in users
    )
    return sorted(Delivery.objects.filter(notification=notification).values_list("id", flat=True))


def sweeps_at_once(count: int, *, batch_size: int) -> list[dict]:
    """Run `count` sweeps in threads (each with its own database connection) released together."""
    start = threading.Barrier(count)

    def sweep() -> dict:
        start.wait(10)
        return deliveries_sweep(batch_size=batch_size)

    sweeps = [Worker(sweep) for _ in range(count)]
    for worker in sweeps:
        worker.start()
    return [worker.outcome() for worker in sweeps]
