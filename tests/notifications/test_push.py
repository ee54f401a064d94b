"""The FCM fallback with the real firebase-admin SDK against a fake FCM server on 127.0.0.1.

Each test gets a fresh Firebase app (the `fcm` fixture); the fake answers per
device token as scripted and records what FCM would have received.
"""

import json
from datetime import timedelta

import firebase_admin
import pytest
from django.utils import timezone
from firebase_admin import messaging

from notifications import push
from notifications.models import Delivery, DeliveryAttempt, Device
from notifications.services import delivery_acknowledge, delivery_push, notification_publish
from notifications.services.pushes import push_retry_delay
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.fake_fcm import OK, Reply, error
from tests.support.threads import Worker

pytestmark = pytest.mark.django_db

NOTIFICATION_DATA = {"documentId": 7, "finalStep": True, "approvedBy": "Bob"}


def publish_to(user, **kwargs) -> Delivery:
    kwargs.setdefault("priority", "high")
    notification = notification_publish(
        event="DocumentApproved",
        title="Document approved",
        body="Bob approved “Budget 2027”.",
        data=NOTIFICATION_DATA,
        user_ids=[user.pk],
        **kwargs,
    )
    return Delivery.objects.get(notification=notification)


def refreshed(delivery: Delivery) -> Delivery:
    delivery.refresh_from_db()
    return delivery


def fcm_outcomes(delivery: Delivery) -> list[tuple[int, str]]:
    return sorted(DeliveryAttempt.objects.filter(delivery=delivery, channel="fcm").values_list("device_id", "outcome"))


def test_canary_firebase_admin_builds_its_send_url_from_the_patched_attribute(fcm):
    assert firebase_admin.__version__.startswith("7.")
    assert "{0}" in messaging._MessagingService.FCM_URL
    backend = push.get_backend()
    assert isinstance(backend, push.FcmBackend)
    service = messaging._get_messaging_service(backend._app)
    assert service._fcm_url == fcm.send_url.format("notifyhub-test")
    for url in (service._fcm_url, "https://fcm.googleapis.com/v1/projects/p/messages:send"):
        assert service._client.session.get_adapter(url).max_retries is push.SDK_HTTP_RETRY


class TestSuccess:
    def test_every_active_device_gets_one_message_with_string_data_and_collapse_ids(self, fcm):
        user = UserFactory()
        phone, tablet = DeviceFactory(user=user), DeviceFactory(user=user, platform=Device.Platform.IOS)
        retired = DeviceFactory(user=user, active=False, deactivated_reason="unregistered")
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "pushed"

        pushed = refreshed(delivery)
        assert (pushed.status, pushed.push_attempts, pushed.push_simulated) == (Delivery.Status.PUSHED, 1, False)
        assert pushed.pushed_at is not None and pushed.next_attempt_at is None
        assert fcm_outcomes(delivery) == [(phone.pk, "accepted"), (tablet.pk, "accepted")]
        assert fcm.messages_to(retired.token) == []
        [message] = fcm.accepted(phone.token)
        assert len(fcm.accepted(tablet.token)) == 1
        notification_id = str(delivery.notification_id)
        assert all(isinstance(value, str) for value in message["data"].values())
        assert message["data"]["notification_id"] == notification_id
        assert message["data"]["event"] == "DocumentApproved"
        assert json.loads(message["data"]["data"]) == NOTIFICATION_DATA
        assert message["notification"] == {"title": "Document approved", "body": "Bob approved “Budget 2027”."}
        assert message["android"]["priority"] == "high"
        assert message["android"]["notification"]["tag"] == notification_id
        assert message["apns"]["headers"]["apns-collapse-id"] == notification_id
        assert message["webpush"]["notification"]["tag"] == notification_id

    def test_content_minimal_push_carries_only_the_id_and_event(self, fcm, settings):
        settings.NOTIFY_PUSH_CONTENT_MINIMAL = True
        user = UserFactory()
        device = DeviceFactory(user=user)
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "pushed"

        [message] = fcm.accepted(device.token)
        assert message["data"] == {"notification_id": str(delivery.notification_id), "event": "DocumentApproved"}
        assert "notification" not in message
        assert "Budget" not in json.dumps(message)
        assert message["apns"]["payload"]["aps"]["content-available"] == 1

    def test_503_then_success_is_accepted_in_one_round_by_the_sdks_own_retry(self, fcm):
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, error("UNAVAILABLE"), OK)
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "pushed"

        assert len(fcm.messages_to(device.token)) == 2
        assert len(fcm.accepted(device.token)) == 1
        assert fcm_outcomes(delivery) == [(device.pk, "accepted")]
        assert refreshed(delivery).push_attempts == 1

    def test_a_redelivered_task_after_success_sends_nothing(self, fcm):
        user = UserFactory()
        device = DeviceFactory(user=user)
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk, claim_id="task-1") == "pushed"
        assert delivery_push(delivery_id=delivery.pk, claim_id="task-1") == "skipped: already pushed"

        assert len(fcm.messages_to(device.token)) == 1
        assert refreshed(delivery).push_attempts == 1


class TestErrors:
    @pytest.mark.parametrize("code", ["UNREGISTERED", "SENDER_ID_MISMATCH"])
    def test_dead_token_deactivates_the_device_and_is_never_retried(self, fcm, code):
        user = UserFactory()
        dead = DeviceFactory(user=user)
        fcm.script(dead.token, error(code))
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "failed: no_devices"
        assert delivery_push(delivery_id=delivery.pk) == "skipped: already failed"

        dead.refresh_from_db()
        assert (dead.active, dead.deactivated_reason) == (False, code.lower())
        failed = refreshed(delivery)
        assert (failed.status, failed.failure_reason) == (Delivery.Status.FAILED, "no_devices")
        assert failed.last_error == "Every device token was unregistered."
        [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
        assert (attempt.outcome, attempt.device_id) == ("device_gone", dead.pk)
        assert attempt.error.startswith(f"{code}: ")
        assert len(fcm.messages_to(dead.token)) == 1

    def test_a_dead_token_does_not_stop_the_users_other_devices(self, fcm):
        user = UserFactory()
        dead, alive = DeviceFactory(user=user), DeviceFactory(user=user)
        fcm.script(dead.token, error("UNREGISTERED"))
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "pushed"

        assert fcm_outcomes(delivery) == [(dead.pk, "device_gone"), (alive.pk, "accepted")]
        assert Device.objects.get(pk=dead.pk).active is False
        assert Device.objects.get(pk=alive.pk).active is True

    def test_quota_exceeded_retries_later_honouring_retry_after(self, fcm):
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, error("QUOTA_EXCEEDED", headers={"Retry-After": "600"}))
        delivery = publish_to(user)
        before = timezone.now()

        assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")

        waiting = refreshed(delivery)
        assert waiting.status == Delivery.Status.PENDING
        assert waiting.next_attempt_at >= before + timedelta(seconds=600)
        assert (waiting.push_claimed_by, waiting.push_claimed_until) == ("", None)
        assert waiting.last_error.startswith("QUOTA_EXCEEDED: ")
        assert fcm_outcomes(delivery) == [(device.pk, "retry")]
        assert len(fcm.messages_to(device.token)) == 1  # not slept on inside the SDK: the wait is in the database

    def test_persistent_unavailable_and_internal_are_retried_later(self, fcm):
        user = UserFactory()
        unavailable, internal = DeviceFactory(user=user), DeviceFactory(user=user)
        fcm.script(unavailable.token, error("UNAVAILABLE"))
        fcm.script(internal.token, error("INTERNAL"))
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")

        assert fcm_outcomes(delivery) == [(unavailable.pk, "retry"), (internal.pk, "retry")]
        errors = sorted(DeliveryAttempt.objects.filter(delivery=delivery).values_list("error", flat=True))
        assert errors[0].startswith("INTERNAL: ") and errors[1].startswith("UNAVAILABLE: ")
        assert len(fcm.messages_to(unavailable.token)) == 3  # the SDK's own quick retries, then ours
        assert refreshed(delivery).status == Delivery.Status.PENDING

    def test_timeout_is_retried_later(self, fcm, settings):
        settings.FCM_TIMEOUT = 0.3
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, Reply(delay=1.5), Reply(delay=1.5), OK)
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")
        [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
        assert attempt.outcome == "retry"
        assert "Read timed out" in attempt.error
        assert len(fcm.messages_to(device.token)) == 2  # the SDK retried the read timeout once

        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert delivery_push(delivery_id=delivery.pk) == "pushed"

    def test_invalid_argument_fails_permanently_with_the_reason(self, fcm):
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, error("INVALID_ARGUMENT"))
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "failed: push_rejected"
        assert delivery_push(delivery_id=delivery.pk) == "skipped: already failed"

        failed = refreshed(delivery)
        assert (failed.status, failed.failure_reason) == (Delivery.Status.FAILED, "push_rejected")
        assert failed.last_error == "INVALID_ARGUMENT: fake INVALID_ARGUMENT"
        assert failed.failed_at is not None
        assert Device.objects.get(pk=device.pk).active is True
        assert len(fcm.messages_to(device.token)) == 1

    def test_no_active_device_fails_no_devices_without_calling_fcm(self, fcm):
        user = UserFactory()
        DeviceFactory(user=user, active=False)
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "failed: no_devices"

        failed = refreshed(delivery)
        assert (failed.failure_reason, failed.last_error) == ("no_devices", "The recipient has no active device.")
        assert fcm.requests == []

    def test_temporary_errors_fail_push_unavailable_after_the_last_round(self, fcm, settings):
        settings.NOTIFY_MAX_PUSH_ATTEMPTS = 2
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, error("QUOTA_EXCEEDED"))
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")
        assert delivery_push(delivery_id=delivery.pk) == "failed: push_unavailable"

        failed = refreshed(delivery)
        assert (failed.push_attempts, failed.failure_reason) == (2, "push_unavailable")
        assert failed.last_error.startswith("QUOTA_EXCEEDED: ")


class TestBrokenSetup:
    def test_a_broken_credentials_file_is_logged_on_each_device_and_retried(self, fcm, settings, tmp_path):
        broken = tmp_path / "not-a-service-account.json"
        broken.write_text("{}")
        settings.FCM_CREDENTIALS_FILE = str(broken)
        user = UserFactory()
        device = DeviceFactory(user=user)
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")

        [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
        assert (attempt.outcome, attempt.device_id) == ("retry", device.pk)
        assert attempt.error.startswith("ValueError: ")
        waiting = refreshed(delivery)
        assert (waiting.status, waiting.push_claimed_by) == (Delivery.Status.PENDING, "")

    def test_rounds_used_up_by_dead_workers_fail_push_unavailable_without_pushing(self, fcm, settings):
        settings.NOTIFY_MAX_PUSH_ATTEMPTS = 3
        user = UserFactory()
        device = DeviceFactory(user=user)
        delivery = publish_to(user)
        Delivery.objects.filter(pk=delivery.pk).update(push_attempts=3, last_error="UNAVAILABLE: down")

        assert delivery_push(delivery_id=delivery.pk) == "failed: push_unavailable"

        assert refreshed(delivery).last_error == "UNAVAILABLE: down"
        assert fcm.messages_to(device.token) == []

    def test_a_retry_is_never_scheduled_past_the_notifications_expiry(self, fcm):
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, error("QUOTA_EXCEEDED", headers={"Retry-After": "3600"}))
        delivery = publish_to(user, expires_at=timezone.now() + timedelta(minutes=2))

        assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")

        assert refreshed(delivery).next_attempt_at == delivery.notification.expires_at


def test_mixed_results_in_one_batch_then_a_retry_round_pushes_only_the_unsettled_device(fcm):
    user = UserFactory()
    ok, gone, busy, invalid = DeviceFactory.create_batch(4, user=user)
    fcm.script(gone.token, error("UNREGISTERED"))
    fcm.script(busy.token, error("QUOTA_EXCEEDED"), OK)
    fcm.script(invalid.token, error("INVALID_ARGUMENT"))
    delivery = publish_to(user)

    assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")
    assert fcm_outcomes(delivery) == [
        (ok.pk, "accepted"),
        (gone.pk, "device_gone"),
        (busy.pk, "retry"),
        (invalid.pk, "rejected"),
    ]
    assert refreshed(delivery).status == Delivery.Status.PENDING

    assert delivery_push(delivery_id=delivery.pk) == "pushed"

    assert [len(fcm.messages_to(device.token)) for device in (ok, gone, busy, invalid)] == [1, 1, 2, 1]
    pushed = refreshed(delivery)
    assert (pushed.status, pushed.push_attempts) == (Delivery.Status.PUSHED, 2)


def test_a_deleted_device_in_the_attempt_log_does_not_stop_the_retry_round(fcm):
    user = UserFactory()
    forgotten, busy = DeviceFactory(user=user), DeviceFactory(user=user)
    fcm.script(busy.token, error("QUOTA_EXCEEDED"), OK)
    delivery = publish_to(user)
    assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")
    forgotten.delete()  # signed out: its accepted attempt keeps no device

    assert delivery_push(delivery_id=delivery.pk) == "pushed"

    assert len(fcm.accepted(busy.token)) == 1
    assert len(fcm.messages_to(busy.token)) == 2


def test_large_device_lists_are_sent_in_batches(fcm, monkeypatch):
    monkeypatch.setattr(push, "FCM_BATCH_LIMIT", 2)
    user = UserFactory()
    devices = DeviceFactory.create_batch(5, user=user)
    delivery = publish_to(user)

    assert delivery_push(delivery_id=delivery.pk) == "pushed"

    assert [len(fcm.accepted(device.token)) for device in devices] == [1] * 5


def test_expired_notification_fails_expired_and_is_never_pushed(fcm):
    user = UserFactory()
    device = DeviceFactory(user=user)
    delivery = publish_to(user, expires_at=timezone.now() + timedelta(minutes=5))
    delivery.notification.expires_at = timezone.now() - timedelta(seconds=1)
    delivery.notification.save(update_fields=["expires_at"])

    assert delivery_push(delivery_id=delivery.pk) == "failed: expired"

    assert refreshed(delivery).failure_reason == "expired"
    assert fcm.messages_to(device.token) == []


def test_push_retry_delay_doubles_with_jitter_and_is_capped(settings):
    settings.NOTIFY_PUSH_RETRY_DELAY = 10
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (12, 900)]:
        delays = {push_retry_delay(attempt).total_seconds() for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered


class TestLogBackend:
    def test_records_the_push_as_simulated_never_as_sent(self, settings):
        settings.NOTIFY_PUSH_BACKEND = "log"
        user = UserFactory()
        device = DeviceFactory(user=user)
        delivery = publish_to(user)

        assert delivery_push(delivery_id=delivery.pk) == "pushed (simulated)"

        simulated = refreshed(delivery)
        assert (simulated.status, simulated.push_simulated) == (Delivery.Status.PUSHED, True)
        assert simulated.status_label.startswith("Simulated push")
        [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
        assert (attempt.outcome, attempt.device_id) == ("simulated", device.pk)
        assert "no device was contacted" in attempt.error


class TestRaces:
    def test_an_ack_before_the_round_means_nothing_is_sent(self, fcm):
        user = UserFactory()
        device = DeviceFactory(user=user)
        delivery = publish_to(user)
        delivery_acknowledge(user_id=user.pk, notification_id=delivery.notification_id)

        assert delivery_push(delivery_id=delivery.pk) == "skipped: already acknowledged"
        assert fcm.messages_to(device.token) == []

    def test_a_killed_tasks_claim_is_resumed_by_its_redelivery_and_blocks_anyone_else(self, fcm):
        user = UserFactory()
        device = DeviceFactory(user=user)
        delivery = publish_to(user)
        # What a worker killed mid-push leaves behind.
        Delivery.objects.filter(pk=delivery.pk).update(
            push_claimed_by="task-1", push_claimed_until=timezone.now() + timedelta(minutes=1), push_attempts=1
        )

        assert delivery_push(delivery_id=delivery.pk, claim_id="task-2") == "skipped: another push task owns it"
        assert delivery_push(delivery_id=delivery.pk, claim_id="task-1") == "pushed"
        assert len(fcm.messages_to(device.token)) == 1


@pytest.mark.django_db(transaction=True)
class TestRacesAcrossConnections:
    def test_an_ack_during_the_push_wins_at_once_and_the_push_is_still_logged(self, fcm, redis_client):
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, Reply(hold=True))
        delivery = publish_to(user)
        pushing = Worker(delivery_push, delivery_id=delivery.pk)
        pushing.start()
        assert fcm.held.wait(10)

        # No row lock is held while FCM is busy: the ack neither waits nor fails.
        assert delivery_acknowledge(user_id=user.pk, notification_id=delivery.notification_id) is True
        assert pushing.is_alive()
        fcm.release()

        assert pushing.outcome() == "skipped: closed while pushing"
        acknowledged = refreshed(delivery)
        assert acknowledged.status == Delivery.Status.ACKNOWLEDGED
        assert acknowledged.pushed_at is not None
        assert (acknowledged.push_claimed_by, acknowledged.push_claimed_until) == ("", None)
        assert fcm_outcomes(delivery) == [(device.pk, "accepted")]

    def test_a_second_task_cannot_push_a_delivery_another_task_is_pushing(self, fcm, redis_client):
        user = UserFactory()
        device = DeviceFactory(user=user)
        fcm.script(device.token, Reply(hold=True))
        delivery = publish_to(user)
        first = Worker(delivery_push, delivery_id=delivery.pk, claim_id="task-1")
        first.start()
        assert fcm.held.wait(10)

        assert delivery_push(delivery_id=delivery.pk, claim_id="task-2") == "skipped: another push task owns it"
        fcm.release()

        assert first.outcome() == "pushed"
        assert len(fcm.messages_to(device.token)) == 1


class TestInAppOnly:
    def test_a_notification_published_without_push_is_never_pushed_and_ends_in_app_only(self, fcm):
        user = UserFactory()
        phone = DeviceFactory(user=user)
        delivery = publish_to(user, push_allowed=False)

        assert delivery_push(delivery_id=delivery.pk) == "failed: in_app_only"

        closed = refreshed(delivery)
        assert (closed.status, closed.failure_reason, closed.push_attempts) == ("failed", "in_app_only", 0)
        assert closed.status_label == "Failed: In-app only: never pushed (the inbox and the next connection show it)"
        assert fcm.messages_to(phone.token) == []
        assert fcm_outcomes(delivery) == []
        # The next connection still gets it, and its ack makes it acknowledged like any failed one.
        assert delivery_acknowledge(user_id=user.pk, notification_id=delivery.notification_id)
        assert refreshed(delivery).status == "acknowledged"
