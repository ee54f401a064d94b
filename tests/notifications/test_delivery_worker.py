"""End to end with a real Celery worker and beat (as in the Procfile) on the Redis broker.

The worker runs `notifications.push_delivery` and `notifications.sweep_deliveries`
against this session's test database, the test Redis database and the fake FCM
server; timings are shortened through the same environment variables production
uses. This process plays the publisher and the user's WebSocket connection
(presence registry + channel layer listener) and acknowledges through the service.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from notifications import presence
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import delivery_acknowledge, notification_publish
from tests.factories import DeviceFactory, UserFactory
from tests.fake_fcm import OK, Reply
from tests.layer_listener import LayerListener
from tests.notifications.sweeping import due_for_push, sweeps_at_once

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
ACK_TIMEOUT = 0.5
MAX_WS_ATTEMPTS = 2
PUSH_LEASE = 10  # longer than Celery takes to notice a killed pool process (~5 s here)


class CeleryProcesses:
    """A worker (prefork, one child) and a beat, started like the Procfile's and stopped by PID."""

    def __init__(self, environment: dict, log_dir: Path) -> None:
        self.environment = environment
        self.worker_log = log_dir / "worker.log"
        self.beat_log = log_dir / "beat.log"
        celery = [sys.executable, "-m", "tests.celery_worker", "--app", "notifyhub"]
        self.worker = self._start(
            [*celery, "worker", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--hostname", f"e2e-{os.getpid()}@localhost"],
            self.worker_log,
        )  # fmt: skip
        self._wait_for_log(self.worker_log, " ready.")
        self.beat = self._start(
            [*celery, "beat", "--loglevel", "INFO", "--schedule", str(log_dir / "beat-schedule")], self.beat_log
        )

    def _start(self, command: list[str], log: Path) -> subprocess.Popen:
        with log.open("wb") as output:
            return subprocess.Popen(command, cwd=REPO, env=self.environment, stdout=output, stderr=subprocess.STDOUT)

    def _wait_for_log(self, log: Path, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in log.read_text(errors="replace"):
            assert self.worker.poll() is None, f"the worker exited:\n{self.logs()}"
            assert time.monotonic() < deadline, f"the worker did not start:\n{self.logs()}"
            time.sleep(0.1)

    def pool_child_pids(self) -> list[int]:
        children = Path(f"/proc/{self.worker.pid}/task/{self.worker.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in (self.worker_log, self.beat_log)
        )

    def stop(self) -> None:
        for process in (self.beat, self.worker):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (self.beat, self.worker):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def celery_processes(django_db_setup, fake_fcm_server, tmp_path_factory):
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.flushdb()  # our test Redis DB: leftovers of earlier modules must not reach this worker
    database = connection.settings_dict  # NAME is the test database's by now
    environment = {
        **os.environ,
        "ENV_FILE": str(REPO / "no-such-env-file"),
        "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "NOTIFY_ACK_TIMEOUT": str(ACK_TIMEOUT),
        "NOTIFY_MAX_WS_ATTEMPTS": str(MAX_WS_ATTEMPTS),
        "NOTIFY_SWEEP_INTERVAL": "0.3",
        "NOTIFY_PUSH_LEASE": str(PUSH_LEASE),
        "NOTIFY_PUSH_BACKEND": "fcm",
        "FCM_CREDENTIALS_FILE": str(fake_fcm_server.credentials_file),
        "FAKE_FCM_URL": fake_fcm_server.send_url,
        "LOG_LEVEL": "INFO",
    }  # fmt: skip
    processes = CeleryProcesses(environment, tmp_path_factory.mktemp("celery"))
    yield processes
    processes.stop()
    broker.close()


@pytest.fixture
def worker(celery_processes, fcm, settings):
    """The running worker and beat; this process uses the same delivery timings as they do."""
    settings.NOTIFY_ACK_TIMEOUT = ACK_TIMEOUT
    settings.NOTIFY_MAX_WS_ATTEMPTS = MAX_WS_ATTEMPTS
    settings.NOTIFY_PUSH_LEASE = PUSH_LEASE
    yield celery_processes
    presence_keys = redis.Redis.from_url(settings.REDIS_URL)
    for key in presence_keys.scan_iter(f"{presence.KEY_PREFIX}*"):
        presence_keys.delete(key)
    presence_keys.close()


def go_online(*users) -> None:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for user in users:
        client.zadd(presence.presence_key(user.pk), {f"conn-{user.pk}": time.time() + 120})
    client.close()


def wait_until(condition, worker: CeleryProcesses, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}\n{worker.logs()}"
        time.sleep(0.05)
    return result


def delivery(notification: Notification, user) -> Delivery:
    return Delivery.objects.get(notification=notification, recipient=user)


def attempt_log(item: Delivery) -> list[tuple[str, str]]:
    return list(DeliveryAttempt.objects.filter(delivery=item).values_list("channel", "outcome"))


def test_unacknowledged_ends_pushed_exactly_once_and_acknowledged_is_never_pushed(worker, fcm):
    silent, attentive = UserFactory(), UserFactory()
    silent_phone, attentive_phone = DeviceFactory(user=silent), DeviceFactory(user=attentive)
    go_online(silent, attentive)

    with LayerListener([silent.pk, attentive.pk]) as listener:
        notification = notification_publish(
            event="NewTask", title="Approve", user_ids=[silent.pk, attentive.pk], data={"documentId": 1}
        )
        listener.wait_for(attentive.pk, 1)
        assert delivery_acknowledge(user_id=attentive.pk, notification_id=notification.pk) is True

        wait_until(lambda: delivery(notification, silent).status == Delivery.Status.PUSHED, worker, "pushed")
        silent_messages = listener.messages(silent.pk)

    assert [message["notification"]["id"] for message in silent_messages] == [str(notification.pk)] * MAX_WS_ATTEMPTS
    pushed = delivery(notification, silent)
    assert (pushed.attempts, pushed.push_attempts, pushed.push_simulated) == (MAX_WS_ATTEMPTS, 1, False)
    assert attempt_log(pushed) == [("ws", "sent")] * MAX_WS_ATTEMPTS + [("fcm", "accepted")]
    [message] = fcm.accepted(silent_phone.token)
    assert message["data"]["notification_id"] == str(notification.pk)

    acknowledged = delivery(notification, attentive)
    assert acknowledged.status == Delivery.Status.ACKNOWLEDGED
    assert acknowledged.push_attempts == 0 and acknowledged.pushed_at is None
    assert ("fcm", "accepted") not in attempt_log(acknowledged)
    assert fcm.messages_to(attentive_phone.token) == []


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
    assert worker.worker.poll() is None


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
