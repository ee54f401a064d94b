"""Presence under faults: a Redis restart, a killed web process, a host clock that is off."""

import asyncio
import os
import signal
import time

import pytest

from notifications import presence
from notifications.models import Delivery
from notifications.services import deliveries_sweep, notification_publish
from tests.support.broker_queue import queued_push_delivery_ids
from tests.support.celery_stack import CeleryStack
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token, until_notification
from tests.support.presence_registry import settle_presence_registry
from tests.support.servers import child_environment
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

PROCESS_TTL = 2.0


def delivery_of(notification, user) -> Delivery:
    return Delivery.objects.get(notification=notification, recipient=user)


def test_after_a_redis_restart_a_connected_client_gets_what_is_published_at_once_live(
    private_redis, start_server, settings, fake_fcm_server, tmp_path
):
    settings.NOTIFY_PRESENCE_PROCESS_TTL = PROCESS_TTL
    with private_redis.client() as client:
        settle_presence_registry(client)
    timings = {"NOTIFY_PRESENCE_PROCESS_TTL": str(PROCESS_TTL), "NOTIFY_SWEEP_INTERVAL": "0.3"}
    server = start_server("redis-restart", env=timings)
    celery = CeleryStack.start(
        environment=child_environment(
            {
                **timings,
                "NOTIFY_PUSH_BACKEND": "fcm",
                "FCM_CREDENTIALS_FILE": str(fake_fcm_server.credentials_file),
                "FAKE_FCM_URL": fake_fcm_server.send_url,
            }
        ),
        log_dir=tmp_path,
    )
    user = UserFactory()
    try:
        with NativeClient.connect(server, token=access_token(user)) as connected:
            connected.start()

            private_redis.restart()  # empty: every connection's presence, the groups, the broker queue are gone
            notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])

            frames = connected.frames_until(until_notification(notification.pk), timeout=20)
            assert frames[-1]["replayed"] is False
            connected.send(type="ack", id=str(notification.pk))
            assert eventually(lambda: delivery_of(notification, user).status == Delivery.Status.ACKNOWLEDGED)
            # Never pushed or failed meanwhile as if the user had been offline.
            assert delivery_of(notification, user).pushed_at is None
            # ... and the process put its connection back at once, not after a heartbeat.
            assert presence.is_online(user.pk)
    finally:
        celery.stop()
        server.stop()


def test_a_restart_is_noticed_even_when_a_connection_put_the_process_key_back_first(redis_client):
    """A connection opening (or refreshing) just after a Redis restart writes the process's liveness key again.
    The next liveness tick must still see that the registry began anew, and have every connection re-registered,
    or those that did not refresh look offline (and are pushed instead) until their next heartbeat."""
    liveness = presence.ProcessLiveness()
    lost = []
    liveness.on_registry_lost(lambda: lost.append(True))
    asyncio.run(presence.connection_alive(6, presence.new_connection_id()))  # the process's first connection
    assert liveness.tick() is True

    redis_client.flushdb()  # as a restart leaves Redis: empty
    asyncio.run(presence.connection_alive(7, presence.new_connection_id()))  # a connection opens meanwhile

    assert liveness.tick() is False
    assert lost == [True]
    assert liveness.tick() is True  # once: the registry it knows now is the new one


def test_while_the_registry_is_incomplete_an_offline_looking_user_is_not_pushed_yet(redis_client, settings):
    settings.NOTIFY_PRESENCE_PROCESS_TTL = PROCESS_TTL
    redis_client.delete(presence.SINCE_KEY)  # as after a Redis restart: nobody has re-registered yet
    user = UserFactory()

    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])

    held = delivery_of(notification, user)
    assert held.status == Delivery.Status.PENDING
    assert queued_push_delivery_ids(redis_client) == []
    assert list(held.attempt_log.values_list("outcome", flat=True)) == []
    Delivery.objects.filter(pk=held.pk).update(next_attempt_at=held.created_at)  # due for the sweep now
    assert deliveries_sweep().get("held") == 1  # still incomplete: held again, not pushed
    assert queued_push_delivery_ids(redis_client) == []

    # One process TTL on, every live process has re-registered: the registry is complete.
    assert eventually(lambda: presence.lookup([user.pk]).complete, timeout=PROCESS_TTL + 5)
    Delivery.objects.filter(pk=held.pk).update(next_attempt_at=held.created_at)
    assert deliveries_sweep()["push_queued"] == 1
    assert queued_push_delivery_ids(redis_client) == [held.pk]


def test_a_killed_web_process_users_look_offline_within_the_process_ttl(start_server, redis_client, settings):
    settings.NOTIFY_PRESENCE_PROCESS_TTL = PROCESS_TTL
    server = start_server("killed", env={"NOTIFY_PRESENCE_PROCESS_TTL": str(PROCESS_TTL)})
    user = UserFactory()
    client = NativeClient.connect(server, token=access_token(user))
    client.start()
    assert presence.is_online(user.pk)

    os.kill(server.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()

    # Its heartbeat entry is good for NOTIFY_PRESENCE_TTL (a minute); the process's liveness key ends sooner.
    assert eventually(lambda: not presence.is_online(user.pk), timeout=PROCESS_TTL + 5)
    assert time.monotonic() - killed_at < settings.NOTIFY_PRESENCE_TTL / 2
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])
    pushed_instead = delivery_of(notification, user)
    assert pushed_instead.status == Delivery.Status.PENDING  # not `sent` to a dead process
    assert queued_push_delivery_ids(redis_client) == [pushed_instead.pk]
    server.stop()


def test_presence_runs_on_redis_time_whatever_the_hosts_clock_says(redis_client):
    real_time = time.time
    with pytest.MonkeyPatch.context() as web_host:
        web_host.setattr(time, "time", lambda: real_time() - 120)  # the web host's clock is two minutes behind
        asyncio.run(presence.connection_alive(7, presence.new_connection_id(), department_ids=[3]))

    # Read from a host whose clock is right (a worker, the API's process).
    assert presence.live_connection_counts([7]) == {7: 1}
    assert presence.department_connection_counts([3]) == {3: {7: 1}}
