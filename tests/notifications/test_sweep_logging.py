"""The sweeper and beat are quiet while nothing is due: Celery's per-run lines of the periodic tasks (sent,
received, succeeded: three every few seconds) are dropped, and a sweep that did something logs one line."""

import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from notifications.models import Delivery, Notification
from tests.support.celery_stack import CeleryStack, fake_fcm_environment
from tests.support.factories import UserFactory
from tests.support.presence_registry import settle_presence_registry
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stack(fcm, fake_fcm_server, tmp_path):
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    settle_presence_registry(broker)
    environment = fake_fcm_environment(
        fake_fcm_server, {"NOTIFY_SWEEP_INTERVAL": "0.3", "NOTIFY_RETENTION_INTERVAL": "0.3"}
    )
    stack = CeleryStack.start(environment=environment, log_dir=tmp_path)
    yield stack
    stack.stop()
    broker.close()


def sweep_lines(stack: CeleryStack) -> list[str]:
    """What the sweeper and beat logged about the periodic tasks since they started (their banners list them)."""
    text = stack.sweeper.log_text().partition(" ready.")[2] + stack.beat.log_text().partition("beat: Starting")[2]
    return [line for line in text.splitlines() if "sweep" in line or "retention" in line]


def test_idle_sweeps_log_nothing_and_a_sweep_that_did_something_one_line(stack):
    time.sleep(3)  # some ten beat runs of each periodic task, with nothing to do
    assert sweep_lines(stack) == [], stack.logs()

    notification = Notification.objects.create(event="Quiet", title="due")
    Delivery.objects.create(
        notification=notification, recipient=UserFactory(), next_attempt_at=timezone.now() - timedelta(minutes=1)
    )

    assert eventually(lambda: len(sweep_lines(stack)) >= 1, timeout=20), stack.logs()
    time.sleep(1.5)  # later runs find nothing due: still one line
    (line,) = sweep_lines(stack)
    assert "sweep: push queued 1" in line
