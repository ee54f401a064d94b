"""Retention: settled deliveries (with their attempts), then notifications left without deliveries, go
NOTIFY_RETENTION_DAYS after they last changed; open deliveries never do; expired idempotency keys go; every
batch is bounded, a run stops at its time budget and the next goes on; beat runs it on the sweeper."""

import logging
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, IdempotencyKey, Notification
from notifications.services import retention_prune
from tests.support.factories import UserFactory
from tests.support.procfile import procfile_process
from tests.support.servers import child_environment
from tests.support.threads import Worker
from tests.support.waiting import eventually

RETENTION_DAYS = 90
Status = Delivery.Status
SETTLED = [Status.ACKNOWLEDGED, Status.READ, Status.PUSHED, Status.FAILED]


@pytest.fixture(autouse=True)
def retention(settings):
    settings.NOTIFY_RETENTION_DAYS = RETENTION_DAYS
    settings.NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS = 24


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def history(count: int, *, status: str, changed_days_ago: float, recipient, attempts: int = 2) -> list[int]:
    """`count` notifications with one delivery each, in `status`, published and last changed that many days ago,
    with `attempts` attempt rows each; returns the deliveries' ids. Bulk statements: thousands take a moment."""
    then = days_ago(changed_days_ago)
    notifications = Notification.objects.bulk_create(
        Notification(event="History", title=f"{status} #{number}", created_at=then) for number in range(count)
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            notification=notification,
            recipient=recipient,
            status=status,
            created_at=then,
            # Open ones are not due: the retry sweep of the end-to-end test leaves them as they are.
            next_attempt_at=timezone.now() + timedelta(hours=1) if status in Delivery.OPEN_STATUSES else None,
        )
        for notification in notifications
    )
    ids = [delivery.pk for delivery in deliveries]
    Delivery.objects.filter(pk__in=ids).update(updated_at=then)  # bulk_create stamped them now (auto_now)
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(delivery_id=delivery_id, channel="ws", outcome="sent", created_at=then)
        for delivery_id in ids
        for _ in range(attempts)
    )
    return ids


def key_claimed(publisher, notification: Notification, *, hours_ago: float) -> IdempotencyKey:
    return IdempotencyKey.objects.create(
        publisher=publisher,
        key=f"key-{hours_ago}",
        request_hash="0" * 64,
        notification=notification,
        created_at=timezone.now() - timedelta(hours=hours_ago),
    )


class Scenario:
    """Everything the pruner must tell apart, a few thousand rows in all."""

    OLD_SETTLED_EACH = 500  # per settled status

    def __init__(self) -> None:
        recipient = UserFactory()
        self.old_settled = [
            delivery_id
            for status in SETTLED
            for delivery_id in history(
                self.OLD_SETTLED_EACH, status=status, changed_days_ago=RETENTION_DAYS + 1, recipient=recipient
            )
        ]
        self.old_open = history(100, status=Status.PENDING, changed_days_ago=400, recipient=recipient) + history(
            100, status=Status.SENT, changed_days_ago=400, recipient=recipient
        )
        self.recent_settled = history(
            200, status=Status.ACKNOWLEDGED, changed_days_ago=RETENTION_DAYS - 1, recipient=recipient
        )
        # Published long ago, acknowledged lately by a client that came back: the delivery counts from its last change.
        [self.late_ack] = history(1, status=Status.ACKNOWLEDGED, changed_days_ago=1, recipient=recipient)
        Notification.objects.filter(deliveries=self.late_ack).update(created_at=days_ago(300))
        # Published to nobody (an empty department): nothing ever refers to them.
        self.old_undelivered = Notification.objects.create(
            event="Nobody", title="old", created_at=days_ago(RETENTION_DAYS + 1)
        )
        self.recent_undelivered = Notification.objects.create(event="Nobody", title="recent", created_at=days_ago(1))
        publisher = UserFactory()
        kept_notification = Notification.objects.get(deliveries=self.recent_settled[0])
        self.expired_key = key_claimed(publisher, kept_notification, hours_ago=25)
        self.live_key = key_claimed(publisher, kept_notification, hours_ago=23)

    @property
    def kept_deliveries(self) -> list[int]:
        return self.old_open + self.recent_settled + [self.late_ack]

    def assert_pruned(self) -> None:
        assert not Delivery.objects.filter(pk__in=self.old_settled).exists()
        assert not DeliveryAttempt.objects.filter(delivery_id__in=self.old_settled).exists()
        assert sorted(Delivery.objects.values_list("pk", flat=True)) == sorted(self.kept_deliveries)
        assert DeliveryAttempt.objects.count() == 2 * len(self.kept_deliveries)
        # Every notification left has a delivery left, but the recent one that reached nobody.
        assert Notification.objects.count() == len(self.kept_deliveries) + 1
        assert not Notification.objects.filter(pk=self.old_undelivered.pk).exists()
        assert Notification.objects.filter(pk=self.recent_undelivered.pk).exists()
        assert list(IdempotencyKey.objects.values_list("pk", flat=True)) == [self.live_key.pk]


@pytest.mark.django_db
class TestPrune:
    def test_old_settled_deliveries_go_with_their_attempts_and_notifications_open_and_recent_ones_stay(self):
        scenario = Scenario()

        deleted = retention_prune()

        assert deleted == {
            "idempotency_keys": 1,
            "delivery_attempts": 2 * len(scenario.old_settled),
            "deliveries": len(scenario.old_settled),
            "notifications": len(scenario.old_settled) + 1,
        }
        scenario.assert_pruned()
        assert retention_prune() == {}

    def test_every_statement_deletes_one_bounded_batch_and_a_run_out_of_time_leaves_the_rest_to_the_next(self, caplog):
        recipient = UserFactory()
        history(2_500, status=Status.FAILED, changed_days_ago=RETENTION_DAYS + 1, recipient=recipient, attempts=1)

        runs = []
        with CaptureQueriesContext(connection) as queries, caplog.at_level(logging.INFO):
            for _ in range(6):
                runs.append(retention_prune(batch_size=1_000, time_budget=0))  # no time: one full batch per run

        assert runs == [
            {"delivery_attempts": 1_000, "deliveries": 1_000},
            {"delivery_attempts": 1_000, "deliveries": 1_000},
            {"delivery_attempts": 500, "deliveries": 500, "notifications": 1_000},
            {"notifications": 1_000},
            {"notifications": 500},
            {},
        ]
        deletes = [query["sql"] for query in queries.captured_queries if "DELETE FROM" in query["sql"]]
        assert deletes and all("LIMIT 1000" in sql for sql in deletes)
        assert not Notification.objects.exists()
        lines = [record.getMessage() for record in caplog.records if record.name == "notifications.services.retention"]
        assert len(lines) == 5  # one per run that deleted something, none for the idle one
        assert (
            lines[0] == "retention: deleted 1000 delivery attempts, 1000 deliveries; out of time, the next run goes on"
        )
        assert lines[-1] == "retention: deleted 500 notifications"

    def test_zero_days_keeps_deliveries_and_notifications_forever_but_keys_still_expire(self, settings):
        settings.NOTIFY_RETENTION_DAYS = 0
        scenario = Scenario()

        assert retention_prune() == {"idempotency_keys": 1}

        assert Delivery.objects.filter(pk__in=scenario.old_settled).count() == len(scenario.old_settled)
        assert Notification.objects.filter(pk=scenario.old_undelivered.pk).exists()
        assert list(IdempotencyKey.objects.values_list("pk", flat=True)) == [scenario.live_key.pk]


@pytest.mark.django_db(transaction=True)
def test_a_row_someone_else_holds_is_skipped_not_waited_for():
    """An ack or a sweep holding a delivery's row lock keeps it for the next run; the pruner never waits on it."""
    recipient = UserFactory()
    held, _ = history(2, status=Status.PUSHED, changed_days_ago=RETENTION_DAYS + 1, recipient=recipient)

    with transaction.atomic():
        list(Delivery.objects.select_for_update().filter(pk=held))
        prune = Worker(retention_prune)
        prune.start()
        deleted = prune.outcome(timeout=10)

    assert deleted == {"delivery_attempts": 2, "deliveries": 1, "notifications": 1}
    assert list(Delivery.objects.values_list("pk", flat=True)) == [held]
    assert retention_prune() == {"delivery_attempts": 2, "deliveries": 1, "notifications": 1}


@pytest.fixture
def sweeper_and_beat(redis_client, fake_fcm_server, tmp_path, transactional_db):
    """The Procfile's sweeper and beat lines, beat running the pruner every 0.3 s (stopped before the tables are
    emptied after the test)."""
    environment = child_environment(
        {
            "NOTIFY_RETENTION_INTERVAL": "0.3",
            "NOTIFY_RETENTION_DAYS": str(RETENTION_DAYS),
            "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
            "FAKE_FCM_URL": fake_fcm_server.send_url,
        }
    )
    processes = []
    try:
        for name, ready in [("sweeper", " ready."), ("beat", "beat: Starting")]:
            process = procfile_process(name, env=environment, log_path=tmp_path / f"{name}.log")
            processes.append(process)
            process.start(ready=lambda process=process, ready=ready: ready in process.log_text(), timeout=60)
        yield processes
    finally:
        for process in reversed(processes):
            process.stop()


def test_beat_has_the_sweeper_prune_what_is_past_its_retention(sweeper_and_beat):
    sweeper, _ = sweeper_and_beat
    with transaction.atomic():  # the pruner sees it whole: no attempt inserted after its delivery went
        scenario = Scenario()

    # A run the beat started before the scenario committed prunes only part of it (it read the deliveries before,
    # the notifications after); the next run takes the rest.
    def pruned() -> bool:
        return not (
            Notification.objects.filter(pk=scenario.old_undelivered.pk).exists()
            or Delivery.objects.filter(pk__in=scenario.old_settled).exists()
        )

    assert eventually(pruned, timeout=30), sweeper.log_text()[-4000:]

    scenario.assert_pruned()
    assert "retention: deleted" in sweeper.log_text()
