"""The retry sweep with real PostgreSQL, Redis (presence, channel layer) and the Celery broker queue.

No worker runs here: pushes the sweep queues stay in the broker, where the
tests read them (test_delivery_worker.py runs them with a real worker).
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from notifications import layer, presence
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import deliveries_sweep, notification_publish
from tests.support.broker_queue import queued_push_delivery_ids
from tests.support.factories import UserFactory
from tests.support.layer import LayerListener
from tests.support.sweeping import due_for_push, sweeps_at_once
from tests.support.threads import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def go_online(redis_client, *users) -> None:
    for user in users:
        redis_client.zadd(presence.presence_key(user.pk), {f"conn-{user.pk}": time.time() + 60})


def go_offline(redis_client, *users) -> None:
    for user in users:
        redis_client.delete(presence.presence_key(user.pk))


def publish_to(*users, **kwargs) -> Notification:
    return notification_publish(event="NewTask", title="Approve", user_ids=[user.pk for user in users], **kwargs)


def make_due(*deliveries_or_notification) -> None:
    """Move the ack deadline / retry time into the past, as if time had passed."""
    for item in deliveries_or_notification:
        rows = Delivery.objects.filter(notification=item) if isinstance(item, Notification) else [item]
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )


def delivery(notification, user) -> Delivery:
    return Delivery.objects.get(notification=notification, recipient=user)


@contextmanager
def layer_sends_to(user) -> Iterator[LayerListener]:
    """What the channel layer hands to `user`'s connections (a stand-in hub connection in their group)."""
    listener = LayerListener([layer.user_group(user.pk)])
    try:
        yield listener
    finally:
        listener.close()


def sent_ids(listener: LayerListener) -> list[str]:
    return [message["notification"]["id"] for message in listener.drain()]


def test_an_unacknowledged_send_is_resent_to_an_online_user_with_a_doubled_wait(redis_client, settings):
    settings.NOTIFY_ACK_TIMEOUT = 5
    user = UserFactory()
    go_online(redis_client, user)
    with layer_sends_to(user) as listener:
        notification = publish_to(user)
        make_due(notification)

        assert deliveries_sweep() == {"expired": 0, "resent": 1, "push_queued": 0}

        assert sent_ids(listener) == [str(notification.pk)] * 2
    resent = delivery(notification, user)
    assert (resent.status, resent.attempts) == (Delivery.Status.SENT, 2)
    last_send = DeliveryAttempt.objects.filter(delivery=resent).last()
    assert resent.next_attempt_at - last_send.created_at == timedelta(seconds=10)
    assert queued_push_delivery_ids(redis_client) == []


def test_after_the_last_websocket_attempt_the_sweep_queues_a_push(redis_client, settings):
    settings.NOTIFY_MAX_WS_ATTEMPTS = 1
    user = UserFactory()
    go_online(redis_client, user)
    with layer_sends_to(user) as listener:
        notification = publish_to(user)
        make_due(notification)

        assert deliveries_sweep() == {"expired": 0, "resent": 0, "push_queued": 1}

        assert sent_ids(listener) == [str(notification.pk)]
    assert queued_push_delivery_ids(redis_client) == [delivery(notification, user).pk]


def test_a_user_who_went_offline_is_pushed_instead_of_resent(redis_client):
    user = UserFactory()
    go_online(redis_client, user)
    notification = publish_to(user)
    assert delivery(notification, user).status == Delivery.Status.SENT
    go_offline(redis_client, user)
    make_due(notification)

    assert deliveries_sweep() == {"expired": 0, "resent": 0, "push_queued": 1}

    pushed_instead = delivery(notification, user)
    assert queued_push_delivery_ids(redis_client) == [pushed_instead.pk]
    assert pushed_instead.attempts == 1
    assert list(pushed_instead.attempt_log.values_list("channel", "outcome")) == [
        ("ws", "sent"),
        ("ws", "no_connection"),
    ]


def test_deliveries_a_dead_process_left_pending_are_dispatched_after_the_grace_period(redis_client, settings):
    settings.NOTIFY_DISPATCH_GRACE = 30
    online, offline, legacy = UserFactory(), UserFactory(), UserFactory()
    go_online(redis_client, online, legacy)
    # What a process that died between commit and dispatch leaves: committed rows, nothing sent or queued.
    notification = Notification.objects.create(event="NewTask", title="Approve")
    created = timezone.now()
    for user in (online, offline):
        Delivery.objects.create(
            notification=notification,
            recipient=user,
            created_at=created,
            next_attempt_at=created + timedelta(seconds=30),
        )
    Delivery.objects.create(  # written without next_attempt_at (e.g. by an older release)
        notification=notification, recipient=legacy, created_at=created - timedelta(seconds=31)
    )

    with layer_sends_to(online) as online_sends, layer_sends_to(legacy) as legacy_sends:
        assert deliveries_sweep() == {"expired": 0, "resent": 1, "push_queued": 0}
        assert sent_ids(legacy_sends) == [str(notification.pk)]
        make_due(delivery(notification, online), delivery(notification, offline))

        assert deliveries_sweep() == {"expired": 0, "resent": 1, "push_queued": 1}

        assert sent_ids(online_sends) == [str(notification.pk)]
    assert delivery(notification, online).status == Delivery.Status.SENT
    assert delivery(notification, legacy).status == Delivery.Status.SENT
    assert queued_push_delivery_ids(redis_client) == [delivery(notification, offline).pk]


def test_expired_deliveries_fail_expired_and_are_never_pushed(redis_client):
    online, offline = UserFactory(), UserFactory()
    go_online(redis_client, online)
    notification = publish_to(online, offline, expires_at=timezone.now() + timedelta(minutes=5))
    queued_at_publish = queued_push_delivery_ids(redis_client)
    Notification.objects.filter(pk=notification.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    make_due(notification)

    assert deliveries_sweep() == {"expired": 2, "resent": 0, "push_queued": 0}

    for user in (online, offline):
        expired = delivery(notification, user)
        assert (expired.status, expired.failure_reason) == (Delivery.Status.FAILED, "expired")
        assert expired.pushed_at is None and expired.next_attempt_at is None
    assert queued_push_delivery_ids(redis_client) == queued_at_publish


def test_final_and_not_yet_due_deliveries_are_left_alone(redis_client):
    user = UserFactory()
    go_online(redis_client, user)
    waiting, acknowledged = publish_to(user), publish_to(user)
    Delivery.objects.filter(notification=acknowledged).update(
        status=Delivery.Status.ACKNOWLEDGED, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )

    assert deliveries_sweep() == {}
    assert delivery(waiting, user).attempts == 1


def test_a_claimed_delivery_is_not_taken_again_by_the_next_sweep(redis_client):
    user = UserFactory()
    notification = publish_to(user)
    redis_client.delete("celery")  # the push queued at publish
    make_due(notification)

    assert deliveries_sweep() == {"expired": 0, "resent": 0, "push_queued": 1}
    assert deliveries_sweep() == {}

    assert queued_push_delivery_ids(redis_client) == [delivery(notification, user).pk]


def test_rows_another_sweep_has_locked_are_skipped_not_waited_for(redis_client):
    due = due_for_push(UserFactory.create_batch(6))
    locked, free = due[:3], due[3:]
    holding, release = threading.Event(), threading.Event()

    def lock_rows_like_a_sweep_in_progress() -> None:
        with transaction.atomic():
            list(Delivery.objects.select_for_update().filter(pk__in=locked))
            holding.set()
            release.wait(10)

    other_sweep = Worker(lock_rows_like_a_sweep_in_progress)
    other_sweep.start()
    assert holding.wait(10)
    try:
        assert deliveries_sweep()["push_queued"] == 3
        assert queued_push_delivery_ids(redis_client) == free
    finally:
        release.set()
        other_sweep.outcome()

    assert deliveries_sweep()["push_queued"] == 3
    assert queued_push_delivery_ids(redis_client) == due


def test_two_sweeps_racing_take_each_due_delivery_exactly_once(redis_client):
    due = due_for_push(UserFactory.create_batch(60))

    reports = sweeps_at_once(2, batch_size=5)

    assert sum(report.get("push_queued", 0) for report in reports) == 60
    assert queued_push_delivery_ids(redis_client) == due  # each once: no duplicates, none missing


def a_web_process_behind_by(seconds: float) -> None:
    """What a web process's liveness thread publishes when its hub is `seconds` behind."""
    liveness = presence.ProcessLiveness()
    liveness.behind_seconds = lambda: seconds
    liveness.tick()


def test_while_a_hub_process_is_behind_acks_are_given_that_much_longer(redis_client, settings):
    settings.NOTIFY_ACK_TIMEOUT = 5
    user = UserFactory()
    go_online(redis_client, user)
    notification = publish_to(user)
    make_due(notification)  # its ack was due a second ago

    a_web_process_behind_by(30)
    assert deliveries_sweep() == {}  # the ack may be stuck in the backlog: no resend, no push yet

    a_web_process_behind_by(0)
    assert deliveries_sweep() == {"expired": 0, "resent": 1, "push_queued": 0}


def test_a_hub_that_stays_behind_delays_the_fallback_by_one_bound_at_most(redis_client, settings):
    settings.NOTIFY_ACK_TIMEOUT = 1
    settings.NOTIFY_MAX_WS_ATTEMPTS = 1  # the bound: 1 s
    user = UserFactory()
    go_online(redis_client, user)
    notification = publish_to(user)
    Delivery.objects.filter(notification=notification).update(next_attempt_at=timezone.now() - timedelta(seconds=2))

    a_web_process_behind_by(3_600)

    assert deliveries_sweep() == {"expired": 0, "resent": 0, "push_queued": 1}
