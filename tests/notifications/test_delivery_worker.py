"""End to end with a real Celery worker, sweeper and beat (the Procfile's lines) on the Redis broker.

The worker runs `notifications.push_delivery` and `notifications.sweep_deliveries`
against this session's test database, the test Redis database and the fake FCM
server; timings are shortened through the same environment variables production
uses. Clients are real WebSocket connections to the hub (`hub_server`), or this
process standing in for one where a test needs to control presence directly.
"""

import os
import signal
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from notifications import layer, presence
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import notification_publish
from notifications.services.deliveries import websocket_fallback_bound
from tests.support.api import client_for
from tests.support.celery_stack import CeleryStack, empty_test_redis, fake_fcm_environment
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.fake_fcm import OK, Reply
from tests.support.hub_client import NativeClient, access_token, until_notification
from tests.support.layer import LayerListener
from tests.support.sweeping import due_for_push, sweeps_at_once
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

ACK_TIMEOUT = 0.5
MAX_WS_ATTEMPTS = 2
PUSH_LEASE = 10  # longer than Celery takes to notice a killed pool process (~5 s here)


@pytest.fixture(scope="module")
def celery(django_db_setup, fake_fcm_server, tmp_path_factory):
    empty_test_redis()
    environment = fake_fcm_environment(
        fake_fcm_server,
        {
            "NOTIFY_ACK_TIMEOUT": str(ACK_TIMEOUT),
            "NOTIFY_MAX_WS_ATTEMPTS": str(MAX_WS_ATTEMPTS),
            "NOTIFY_SWEEP_INTERVAL": "0.3",
            "NOTIFY_PUSH_LEASE": str(PUSH_LEASE),
        },
    )
    stack = CeleryStack.start(environment=environment, log_dir=tmp_path_factory.mktemp("celery"))
    yield stack
    stack.stop()


@pytest.fixture
def worker(celery, fcm, settings, transactional_db) -> CeleryStack:
    """The running worker and beat; this process uses the same delivery timings as they do."""
    settings.NOTIFY_ACK_TIMEOUT = ACK_TIMEOUT
    settings.NOTIFY_MAX_WS_ATTEMPTS = MAX_WS_ATTEMPTS
    settings.NOTIFY_PUSH_LEASE = PUSH_LEASE
    yield celery
    # The beat keeps sweeping while pytest-django truncates the tables after the test, and the two can
    # deadlock. PostgreSQL aborts whichever side waits past its deadlock_timeout first: let that be the
    # sweep (the next one runs 0.3 s later), not the truncation.
    with connection.cursor() as cursor:
        cursor.execute("SET deadlock_timeout = '30s'")


def wait_until(condition, worker: CeleryStack, what: str, timeout: float = 30) -> None:
    assert eventually(condition, timeout=timeout), f"timed out waiting until {what}\n{worker.logs()}"


def delivery(notification: Notification, user) -> Delivery:
    return Delivery.objects.get(notification=notification, recipient=user)


def attempt_log(item: Delivery) -> list[tuple[str, str]]:
    return list(DeliveryAttempt.objects.filter(delivery=item).values_list("channel", "outcome"))


def connected(hub_server, user) -> NativeClient:
    client = NativeClient.connect(hub_server, token=access_token(user))
    _hello, replayed = client.start()
    assert replayed == []
    return client


def test_over_the_hub_a_client_that_never_acks_is_pushed_once_and_one_that_acks_never(worker, fcm, hub_server):
    silent, attentive = UserFactory(), UserFactory()
    silent_phone, attentive_phone = DeviceFactory(user=silent), DeviceFactory(user=attentive)
    with connected(hub_server, silent) as silent_client, connected(hub_server, attentive) as attentive_client:
        notification = notification_publish(event="NewTask", title="Approve", user_ids=[silent.pk, attentive.pk])
        for client in (silent_client, attentive_client):
            client.frames_until(until_notification(notification.pk))
        attentive_client.send(type="ack", id=str(notification.pk))

        wait_until(lambda: delivery(notification, silent).status == Delivery.Status.PUSHED, worker, "pushed")
        # The sweep's resends reach the layer (test below), but a connection that has shown the notification
        # is never sent a second copy: the one that acked, and the one that never will (it is pushed instead).
        marker = notification_publish(event="Marker", title="after the push", user_ids=[silent.pk])
        after_first = silent_client.frames_until(until_notification(marker.pk))
        assert [frame["id"] for frame in after_first if frame["type"] == "notification"] == [str(marker.pk)]

    pushed = delivery(notification, silent)
    assert (pushed.attempts, pushed.push_attempts, pushed.push_simulated) == (MAX_WS_ATTEMPTS, 1, False)
    assert attempt_log(pushed) == [("ws", "sent")] * MAX_WS_ATTEMPTS + [("fcm", "accepted")]
    [message] = fcm.accepted(silent_phone.token)
    assert message["data"]["notification_id"] == str(notification.pk)

    acknowledged = delivery(notification, attentive)
    assert acknowledged.status == Delivery.Status.ACKNOWLEDGED
    assert acknowledged.push_attempts == 0 and acknowledged.pushed_at is None
    assert fcm.messages_to(attentive_phone.token) == []


def test_a_client_that_reconnects_fifty_times_without_acking_is_pushed_within_the_bound(worker, fcm, hub_server):
    """Every connect replays the delivery: a replay must never put its push off, nor lock the user out."""
    user = UserFactory()
    phone = DeviceFactory(user=user)
    client = connected(hub_server, user)
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])
    client.frames_until(until_notification(notification.pk))
    client.close()

    replays = 0
    for _ in range(50):
        with NativeClient.connect(hub_server, token=access_token(user)) as again:
            _hello, replayed = again.start()  # a lockout would close this connect with 1011 instead
            replays += [frame["id"] for frame in replayed].count(str(notification.pk))

    wait_until(lambda: delivery(notification, user).status == Delivery.Status.PUSHED, worker, "pushed")
    pushed = delivery(notification, user)
    # The documented bound (every WebSocket send's wait, added up) plus a sweep or two and a generous margin;
    # a replay that postponed the push by its doubled wait would be minutes late, not seconds.
    bound = websocket_fallback_bound() + timedelta(seconds=10)
    assert pushed.pushed_at - pushed.sent_at <= bound, (pushed.sent_at, pushed.pushed_at)
    assert pushed.attempts <= 3  # the hub's own NOTIFY_MAX_WS_ATTEMPTS (its default) at most
    assert pushed.attempt_log.filter(channel="ws").count() == pushed.attempts
    assert len(fcm.accepted(phone.token)) == 1
    assert replays >= 1  # until the push, each connect replayed it (after it, pushed ones are replayed too)

    api = client_for(user)
    assert api.get("/api/notifications/").status_code == 200
    assert api.get(f"/api/notifications/{notification.pk}/").status_code == 200
    staff = UserFactory(is_staff=True, is_superuser=True)
    assert client_for(staff).get(f"/api/notifications/{notification.pk}/deliveries/").status_code == 200
    admin = Client()
    admin.force_login(staff)
    assert admin.get(reverse("admin:notifications_delivery_change", args=[pushed.pk])).status_code == 200


def test_each_unacknowledged_websocket_send_reaches_the_layer_before_the_push(worker, fcm):
    """Without the hub's per-connection de-duplication in the way: every resend the sweep makes, in order."""
    user = UserFactory()
    phone = DeviceFactory(user=user)
    go_online(user)
    listener = LayerListener([layer.user_group(user.pk)])
    try:
        notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])

        wait_until(lambda: delivery(notification, user).status == Delivery.Status.PUSHED, worker, "pushed")
        sends = listener.drain()
    finally:
        listener.close()

    assert [send["notification"]["id"] for send in sends] == [str(notification.pk)] * MAX_WS_ATTEMPTS
    assert len(fcm.accepted(phone.token)) == 1


def go_online(user) -> None:
    """What the hub does on connect (presence), for a stand-in connection on the channel layer."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    client.zadd(presence.presence_key(user.pk), {f"stand-in-{user.pk}": time.time() + 60})
    client.close()


def test_an_offline_user_is_pushed_at_publish_without_waiting_for_the_sweep(worker, fcm, settings):
    # The sweep would not look at this delivery for an hour: only the publish-time push can reach it.
    settings.NOTIFY_DISPATCH_GRACE = 3600
    user = UserFactory()
    phone = DeviceFactory(user=user)

    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])

    wait_until(lambda: delivery(notification, user).status == Delivery.Status.PUSHED, worker, "pushed")
    assert attempt_log(delivery(notification, user)) == [("ws", "no_connection"), ("fcm", "accepted")]
    assert len(fcm.accepted(phone.token)) == 1


def test_a_worker_killed_mid_push_leaves_no_double_push(worker, fcm, settings):
    settings.NOTIFY_DISPATCH_GRACE = 3600
    user = UserFactory()
    phone = DeviceFactory(user=user)
    fcm.script(phone.token, Reply(hold=True), OK)
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])
    assert fcm.held.wait(30), worker.logs()

    [child] = worker.pool_child_pids()
    os.kill(child, signal.SIGKILL)  # the pool process dies while FCM has not answered

    wait_until(lambda: delivery(notification, user).status == Delivery.Status.PUSHED, worker, "pushed")
    assert [request.outcome for request in fcm.requests] == ["abandoned", "accepted"]
    assert len(fcm.accepted(phone.token)) == 1
    pushed = delivery(notification, user)
    assert attempt_log(pushed) == [("ws", "no_connection"), ("fcm", "accepted")]
    assert pushed.push_attempts == 2  # the redelivered task resumed its own claim (the lease had not ended)
    assert worker.worker.process.poll() is None  # the worker lives on with a new pool process


def test_concurrent_sweeps_and_the_worker_push_each_due_delivery_once(worker, fcm):
    users = UserFactory.create_batch(12)
    phones = [DeviceFactory(user=user) for user in users]
    # Sent as often as allowed and never acknowledged: due for a push in every sweep, the worker's beat included.
    due = due_for_push(users, websocket_sends=MAX_WS_ATTEMPTS)

    sweeps_at_once(2, batch_size=2)

    wait_until(
        lambda: not Delivery.objects.filter(pk__in=due).exclude(status=Delivery.Status.PUSHED).exists(),
        worker,
        "all pushed",
    )
    assert [len(fcm.messages_to(phone.token)) for phone in phones] == [1] * len(phones)
    assert DeliveryAttempt.objects.filter(delivery__in=due, outcome="accepted").count() == 12
