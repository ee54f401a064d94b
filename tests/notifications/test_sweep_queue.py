"""The retry sweep keeps running while push tasks back up: it has a queue and a worker of its own (the Procfile's
`sweeper` line), so 1,500 slow pushes waiting in the default queue hold up neither its runs nor their expiry."""

from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from notifications import tasks
from notifications.models import Delivery, Notification
from tests.support.celery_stack import CeleryStack, fake_fcm_environment
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.fake_fcm import Reply
from tests.support.presence_registry import settle_presence_registry
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

BACKLOG = 1_500
SLOW_PUSH_SECONDS = 5


@pytest.fixture
def stack(fcm, fake_fcm_server, tmp_path):
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.flushdb()
    settle_presence_registry(broker)
    environment = fake_fcm_environment(fake_fcm_server, {"NOTIFY_SWEEP_INTERVAL": "0.5"})
    stack = CeleryStack.start(environment=environment, log_dir=tmp_path)
    yield stack
    stack.stop()
    broker.flushdb()  # what is left of the backlog must not reach the next module's worker
    broker.close()


def push_backlog(size: int) -> None:
    """`size` deliveries to a phone FCM answers slowly, each with its push task queued (none due for the sweep)."""
    user = UserFactory()
    DeviceFactory(user=user, token="slow-phone")
    later = timezone.now() + timedelta(hours=1)
    notifications = Notification.objects.bulk_create(
        Notification(event="Backlog", title=f"#{number}") for number in range(size)
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(notification=notification, recipient=user, next_attempt_at=later) for notification in notifications
    )
    for row in deliveries:
        tasks.push_delivery.delay(row.pk)


def test_the_sweep_runs_on_time_behind_a_backlog_of_slow_pushes(stack, fcm):
    fcm.script("slow-phone", Reply(delay=SLOW_PUSH_SECONDS))
    push_backlog(BACKLOG)
    assert eventually(lambda: fcm.messages_to("slow-phone"), timeout=30), stack.logs()
    # Due now: an expired notification's delivery, which only the sweep closes.
    expired = Notification.objects.create(event="Expired", title="too late", expires_at=timezone.now())
    due = Delivery.objects.create(
        notification=expired,
        recipient=UserFactory(),
        status=Delivery.Status.SENT,
        attempts=1,
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )

    assert eventually(lambda: Delivery.objects.get(pk=due.pk).status == Delivery.Status.FAILED, timeout=20), (
        stack.logs()
    )

    assert Delivery.objects.get(pk=due.pk).failure_reason == Delivery.FailureReason.EXPIRED
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        assert broker.llen("celery") > BACKLOG - 10  # the pushes are still backed up: the sweep did not wait for them
    finally:
        broker.close()
    assert "Discarding revoked task" not in stack.sweeper.log_text()
