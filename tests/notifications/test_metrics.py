"""/metrics on the real stack: a daphne hub server, the Procfile's Celery worker, sweeper and beat, and the fake
FCM server, all writing to one metrics directory of their own (a host's), scraped over HTTP as Prometheus does.

And in this process: what each service records, only once its transaction has committed.
"""

from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import Histogram

from core import metrics as host_metrics
from notifications import metrics
from notifications.metrics import PUBLISH_TO_ACK_SECONDS
from notifications.models import Delivery, Notification
from notifications.services import (
    deliveries_fail,
    delivery_mark_read,
    delivery_push,
    notification_publish,
)
from tests.notifyhub.test_web import worker_pids
from tests.support.api import closed_port, make_publisher
from tests.support.celery_stack import CeleryStack
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.fake_fcm import error
from tests.support.hub_client import NativeClient, access_token, until_notification
from tests.support.metrics import parse, scrape, value, values
from tests.support.presence_registry import settle_presence_registry
from tests.support.servers import WebProcess, child_environment, post_json
from tests.support.signalr_client import SignalRSocket
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

# Short delivery timings, as tests/notifications/test_delivery_worker.py: a silent client is pushed within seconds.
TIMINGS = {
    "NOTIFY_ACK_TIMEOUT": "0.5",
    "NOTIFY_MAX_WS_ATTEMPTS": "2",
    "NOTIFY_SWEEP_INTERVAL": "0.3",
    "NOTIFY_PUSH_LEASE": "10",
}


@pytest.fixture(scope="module")
def host(django_db_setup, fake_fcm_server, start_server, tmp_path_factory):
    """A web process and the Celery processes of one host: one metrics directory, as PROMETHEUS_MULTIPROC_DIR."""
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.flushdb()  # our test Redis DB: leftovers of earlier modules must not reach this worker
    settle_presence_registry(broker)
    broker.close()
    overrides = {
        **TIMINGS,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("host-metrics")),
        "NOTIFY_PUSH_BACKEND": "fcm",
        "FCM_CREDENTIALS_FILE": str(fake_fcm_server.credentials_file),
        "FAKE_FCM_URL": fake_fcm_server.send_url,
    }
    celery = CeleryStack.start(environment=child_environment(overrides), log_dir=tmp_path_factory.mktemp("celery"))
    server = start_server("metrics", env=overrides)
    yield server, celery
    celery.stop()
    server.stop()


@pytest.fixture
def stack(host, fcm):
    yield host
    # The beat keeps sweeping while pytest-django truncates the tables: let a deadlock abort the sweep, not that.
    with connection.cursor() as cursor:
        cursor.execute("SET deadlock_timeout = '30s'")


def test_one_scrape_shows_the_work_of_every_process_of_the_host(stack, fcm):
    server, celery = stack
    attentive, silent, offline = UserFactory(), UserFactory(), UserFactory()
    DeviceFactory(user=silent)
    gone_phone = DeviceFactory(user=offline)
    fcm.script(gone_phone.token, error("UNREGISTERED"))
    before = scrape(server)
    assert value(before, "notifyhub_notifications_published_total", source="api") == 0
    assert value(before, "notifyhub_hub_connections", protocol="native") == 0

    with (
        NativeClient.connect(server, token=access_token(attentive)) as acking,
        NativeClient.connect(server, token=access_token(silent)) as never_acking,
        SignalRSocket.started(server, token=access_token(UserFactory())),
    ):
        for client in (acking, never_acking):
            client.start()
        published = post_json(
            server,
            "/api/notifications/",
            {
                "event": "InvoiceDue",
                "title": "Invoice 7",
                "recipients": {"users": [attentive.pk, silent.pk, offline.pk]},
            },
            token=access_token(make_publisher()),
        )
        assert published.status == 201, published.body
        notification_id = published.body["id"]
        for client in (acking, never_acking):
            client.frames_until(until_notification(notification_id))
        assert acking.request("acked", type="ack", id=notification_id)["ids"] == [notification_id]

        def settled() -> bool:
            statuses = dict(Delivery.objects.filter(notification_id=notification_id).values_list("recipient", "status"))
            return statuses == {attentive.pk: "acknowledged", silent.pk: "pushed", offline.pk: "failed"}

        assert eventually(settled, timeout=30), celery.logs()
        # Counted after the commits that settle them, by the web process (the ack) and the Celery pool (the pushes).
        assert eventually(
            lambda: value(scrape(server), "notifyhub_deliveries_finished_total", state="pushed", reason="") == 1
        )
        during = scrape(server)

        assert value(during, "notifyhub_notifications_published_total", source="api") == 1
        assert value(during, "notifyhub_deliveries_created_total", source="api") == 3
        assert value(during, "notifyhub_acks_total", outcome="acknowledged") == 1
        assert value(during, "notifyhub_publish_to_ack_seconds_count") == 1
        assert 0 < value(during, "notifyhub_publish_to_ack_seconds_sum") < 10
        assert value(during, "notifyhub_deliveries_finished_total", state="acknowledged", reason="") == 1
        assert value(during, "notifyhub_deliveries_finished_total", state="failed", reason="no_devices") == 1
        assert value(during, "notifyhub_push_results_total", backend="fcm", outcome="accepted", code="") == 1
        fcm_codes = {"backend": "fcm", "outcome": "device_gone", "code": "UNREGISTERED"}
        assert value(during, "notifyhub_push_results_total", **fcm_codes) == 1
        # The sweeper resent the silent client's notification once, then queued its push.
        assert value(during, "notifyhub_sweep_runs_total") > 1
        assert value(during, "notifyhub_sweep_deliveries_total", step="resent") == 1
        assert value(during, "notifyhub_sweep_deliveries_total", step="push_queued") == 1
        assert value(during, "notifyhub_sweep_batch_size_count") >= 2
        assert value(during, "notifyhub_sweep_lag_seconds") >= 0
        # Live gauges of the web process, and who is online from the presence registry.
        assert value(during, "notifyhub_hub_connections", protocol="native") == 2
        assert value(during, "notifyhub_hub_connections", protocol="signalr") == 1
        assert value(during, "notifyhub_users_online") == 3
        assert value(during, "notifyhub_presence_connections") == 3
        assert value(during, "notifyhub_presence_registry_up") == 1
        assert list(values(during, "notifyhub_hub_router_healthy").values()) == [1]
        [router_labels] = values(during, "notifyhub_hub_router_healthy")
        assert dict(router_labels)["pid"] == str(server.process.pid)

    def all_closed() -> bool:
        after = scrape(server)
        return (
            value(after, "notifyhub_hub_connections", protocol="native") == 0
            and value(after, "notifyhub_hub_connections", protocol="signalr") == 0
            and value(after, "notifyhub_users_online") == 0
        )

    assert eventually(all_closed)


def test_scrapes_are_refused_by_token_and_by_resolved_address_and_survive_redis_being_down(start_server, tmp_path):
    server = start_server(
        "metrics-without-redis",
        env={
            "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
            "METRICS_TOKEN": "scrape-secret",
            "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8",
            "TRUSTED_PROXIES": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        },
    )
    # The test's requests come through a "proxy" on loopback that names the client in X-Forwarded-For.
    inside = {"X-Forwarded-For": "10.0.0.5"}

    refused = server.request("GET", "/metrics", headers=inside)
    assert (refused.status, refused.getheader("WWW-Authenticate")) == (401, 'Bearer realm="metrics"')
    assert b'"code": "not_authenticated"' in refused.data
    wrong = server.request("GET", "/metrics", headers={**inside, "Authorization": "Bearer scrape-secreT"})
    assert wrong.status == 401 and b'"code": "authentication_failed"' in wrong.data
    # The proxy itself (loopback) and a client outside the networks are refused, token or not.
    for headers in ({}, {"X-Forwarded-For": "192.0.2.1"}):
        outside = server.request("GET", "/metrics", headers={**headers, "Authorization": "Bearer scrape-secret"})
        assert outside.status == 403 and b'"code": "permission_denied"' in outside.data

    samples = scrape(server, headers={**inside, "Authorization": "Bearer scrape-secret"})
    assert value(samples, "notifyhub_presence_registry_up") == 0
    assert ("notifyhub_users_online", frozenset()) not in samples
    assert "metrics: the presence registry is unreadable" in server.log_text()


def test_any_uvicorn_worker_answers_for_the_connections_of_both(tmp_path, redis_client):
    web = WebProcess(
        "web-2-metrics",
        env={"ASGI_SERVER": "uvicorn", "WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        log_path=tmp_path / "web.log",
    )
    web.start(ready=lambda: web.answers_http() and len(worker_pids(web)) == 2)
    clients = []
    try:
        # The kernel hands each connection to one worker or the other: connect until both hold some.
        while len(clients) < 40:
            client = NativeClient.connect(web, token=access_token(UserFactory()))
            client.start()
            clients.append(client)
            routers = values(scrape(web), "notifyhub_hub_router_healthy")
            if len(clients) >= 4 and {dict(labels)["pid"] for labels in routers} == set(map(str, worker_pids(web))):
                break
        assert len(routers) == 2, routers

        # Whichever worker answers a scrape, it counts the other's connections too.
        for _ in range(10):
            assert value(scrape(web), "notifyhub_hub_connections", protocol="native") == len(clients)
    finally:
        for client in clients:
            client.close()
        web.stop()
    # The workers exited (SIGTERM): their live gauges went with them; the counters stay.
    assert list(tmp_path.glob("gauge_live*.db")) == []
    assert list(tmp_path.glob("counter_*.db"))


# --- What services record, in this process ------------------------------------------------------------------------


def undispatched_delivery(user) -> Delivery:
    """A pending delivery nothing else takes up (no dispatch queued a push; the sweep looks in an hour)."""
    notification = Notification.objects.create(event="NewTask", title="Approve")
    return Delivery.objects.create(
        notification=notification, recipient=user, next_attempt_at=timezone.now() + timedelta(hours=1)
    )


def here(name: str, **labels: str) -> float:
    """A sample of this process's metrics directory (this process, and any server it started that shares it)."""
    return value(parse(host_metrics.exposition()), name, **labels)


def test_a_workflow_publish_counts_once_its_transaction_commits(redis_client):
    user = UserFactory()
    published, created = (
        here("notifyhub_notifications_published_total", source="workflow"),
        here("notifyhub_deliveries_created_total", source="workflow"),
    )

    with transaction.atomic():
        notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])
        assert here("notifyhub_notifications_published_total", source="workflow") == published

    assert here("notifyhub_notifications_published_total", source="workflow") == published + 1
    assert here("notifyhub_deliveries_created_total", source="workflow") == created + 1


def test_a_rolled_back_failure_is_not_counted_and_a_committed_one_is_counted_with_its_reason(redis_client):
    user = UserFactory()
    delivery = undispatched_delivery(user)
    expired = {"state": "failed", "reason": "expired"}
    before = here("notifyhub_deliveries_finished_total", **expired)

    with pytest.raises(RuntimeError), transaction.atomic():
        deliveries_fail(delivery_ids=[delivery.pk], reason=Delivery.FailureReason.EXPIRED)
        raise RuntimeError("rolled back")
    assert here("notifyhub_deliveries_finished_total", **expired) == before

    assert deliveries_fail(delivery_ids=[delivery.pk], reason=Delivery.FailureReason.EXPIRED) == 1
    assert deliveries_fail(delivery_ids=[delivery.pk], reason=Delivery.FailureReason.EXPIRED) == 0  # already final
    assert here("notifyhub_deliveries_finished_total", **expired) == before + 1


def test_a_read_counts_as_read_once(redis_client):
    user = UserFactory()
    notification_id = undispatched_delivery(user).notification_id
    before = here("notifyhub_deliveries_finished_total", state="read", reason="")

    assert delivery_mark_read(user_id=user.pk, notification_id=notification_id) is True
    assert delivery_mark_read(user_id=user.pk, notification_id=notification_id) is False

    assert here("notifyhub_deliveries_finished_total", state="read", reason="") == before + 1


def test_push_answers_are_counted_by_fcm_error_code(redis_client, fcm):
    user = UserFactory()
    phones = [DeviceFactory(user=user) for _ in range(3)]
    fcm.script(phones[0].token, error("INVALID_ARGUMENT"))
    fcm.script(phones[1].token, error("QUOTA_EXCEEDED"))
    delivery = undispatched_delivery(user)
    labels = [
        {"backend": "fcm", "outcome": "rejected", "code": "INVALID_ARGUMENT"},
        {"backend": "fcm", "outcome": "retry", "code": "QUOTA_EXCEEDED"},
        {"backend": "fcm", "outcome": "accepted", "code": ""},
    ]
    before = [here("notifyhub_push_results_total", **label) for label in labels]

    delivery_push(delivery_id=delivery.pk)

    assert [here("notifyhub_push_results_total", **label) for label in labels] == [count + 1 for count in before]


def test_a_batch_of_ack_delays_lands_in_the_buckets_single_observes_would():
    amounts = [0.0, 0.004, 0.01, 0.0100001, 0.05, 0.7, 59.9, 3600, 7200.5]
    one_by_one, batched = (
        Histogram(
            f"notifyhub_test_{name}",
            "A test histogram",
            buckets=PUBLISH_TO_ACK_SECONDS._upper_bounds[:-1],
            registry=None,
        )
        for name in ("one_by_one", "batched")
    )

    for amount in amounts:
        one_by_one.observe(amount)
    metrics._observe_many(batched, amounts)

    def samples(histogram: Histogram) -> list[tuple[str, dict, float]]:
        [family] = histogram.collect()
        kinds = ("bucket", "count", "sum")
        named = [(sample.name.rsplit("_", 1)[-1], sample.labels, sample.value) for sample in family.samples]
        return [sample for sample in named if sample[0] in kinds]

    assert samples(batched) == samples(one_by_one)
    assert ("count", {}, len(amounts)) in samples(batched)
