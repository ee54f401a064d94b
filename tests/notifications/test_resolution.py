"""Resolving a notification's subject, retracting one, and the race with a push in flight (real PostgreSQL, Redis,
and the real firebase-admin SDK against the fake FCM server)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import dispatch, layer, selectors
from notifications.errors import NotificationError
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import (
    AckOutcome,
    deliveries_acknowledge_many,
    deliveries_mark_all_read,
    deliveries_sweep,
    delivery_mark_read,
    delivery_push,
    delivery_push_replacement,
    notification_publish,
    notification_retract,
    notifications_resolve,
    task_notifications_resolve,
)
from notifications.services.pushes import SUPERSEDED
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.fake_fcm import OK, Reply
from tests.support.layer import LayerListener
from tests.support.threads import Worker

SUBJECT = "task:42"


def publish(*users, subject=SUBJECT, **kwargs) -> Notification:
    return notification_publish(
        event="NewTask",
        title="New task assigned",
        body="Alice asks you to approve “Budget”.",
        user_ids=[user.pk for user in users],
        subject=subject,
        priority="high",
        **kwargs,
    )


def delivery_of(notification: Notification, user) -> Delivery:
    return Delivery.objects.get(notification=notification, recipient=user)


def set_status(notification: Notification, user, status: str, **fields) -> None:
    Delivery.objects.filter(notification=notification, recipient=user).update(status=status, **fields)


def fcm_log(delivery: Delivery) -> list[str]:
    return list(DeliveryAttempt.objects.filter(delivery=delivery, channel="fcm").values_list("outcome", flat=True))


@pytest.fixture
def replacements_queued(monkeypatch) -> list[int]:
    """The delivery ids whose replacement push a resolution queued (after commit)."""
    queued: list[int] = []
    monkeypatch.setattr(
        dispatch, "replacement_pushes_enqueue_on_commit", lambda *, delivery_ids: queued.extend(delivery_ids)
    )
    return queued


@pytest.mark.django_db
class TestResolve:
    def test_every_unread_delivery_is_resolved_read_and_failed_ones_stay(self, redis_client, replacements_queued):
        pending, sent, acknowledged, pushed, read, failed = (UserFactory() for _ in range(6))
        notification = publish(pending, sent, acknowledged, pushed, read, failed)
        now = timezone.now()
        set_status(notification, sent, "sent", sent_at=now)
        set_status(notification, acknowledged, "acknowledged", acknowledged_at=now)
        set_status(notification, pushed, "pushed", pushed_at=now, push_attempts=1)
        set_status(notification, read, "read", read_at=now)
        set_status(notification, failed, "failed", failure_reason="no_devices", failed_at=now)
        other = publish(pending, subject="task:43")

        result = notifications_resolve(subject=SUBJECT, resolution="done")

        assert (result.notifications, result.deliveries, result.recipients) == (1, 4, 6)
        statuses = dict(Delivery.objects.filter(notification=notification).values_list("recipient_id", "status"))
        assert statuses == {
            pending.pk: "resolved",
            sent.pk: "resolved",
            acknowledged.pk: "resolved",
            pushed.pk: "resolved",
            read.pk: "read",
            failed.pk: "failed",
        }
        resolved = delivery_of(notification, pending)
        assert resolved.resolved_at is not None and resolved.next_attempt_at is None
        notification.refresh_from_db()
        assert (notification.resolution, notification.resolved_at) == ("done", resolved.resolved_at)
        assert delivery_of(other, pending).status == "pending"  # another subject is untouched
        assert replacements_queued == [delivery_of(notification, pushed).pk]  # only a pushed one is replaced

    def test_unread_counts_inbox_and_replay_leave_resolved_ones_out(self, redis_client, replacements_queued):
        user = UserFactory()
        notification = publish(user)
        kept = publish(user, subject="")
        assert selectors.unread_count(user.pk) == 2

        notifications_resolve(subject=SUBJECT, resolution="done")

        assert selectors.unread_count(user.pk) == 1
        assert selectors.unread_counts([user.pk]) == {user.pk: 1}
        assert selectors.inbox_summary(user.pk) == selectors.InboxSummary(unread=1, unacknowledged=1)
        assert [d.notification_id for d in selectors.deliveries_to_replay(user.pk)] == [kept.pk]
        page = selectors.inbox_page(user.pk)
        assert [d.notification_id for d in page.deliveries] == [kept.pk, notification.pk]  # unread first
        assert [d.notification_id for d in selectors.inbox_page(user.pk, unread_only=True).deliveries] == [kept.pk]

    def test_reads_and_acks_leave_a_resolved_delivery_resolved(self, redis_client, replacements_queued):
        user = UserFactory()
        notification = publish(user)
        notifications_resolve(subject=SUBJECT, resolution="reassigned")

        assert delivery_mark_read(user_id=user.pk, notification_id=notification.pk) is False
        assert deliveries_acknowledge_many([(user.pk, notification.pk)]) == [AckOutcome.ALREADY]
        assert deliveries_mark_all_read(user_id=user.pk) == 0
        resolved = delivery_of(notification, user)
        assert (resolved.status, resolved.read_at, resolved.acknowledged_at) == ("resolved", None, None)

    def test_the_sweep_and_the_push_task_leave_a_resolved_delivery_alone(self, fcm, redis_client, replacements_queued):
        user = UserFactory()
        phone = DeviceFactory(user=user)
        notification = publish(user)
        notifications_resolve(subject=SUBJECT, resolution="done")
        # Even if something made it look due, the sweep takes open deliveries only.
        Delivery.objects.filter(notification=notification).update(next_attempt_at=timezone.now() - timedelta(hours=1))

        steps = deliveries_sweep()

        assert sum(steps.values()) == 0, steps
        resolved = delivery_of(notification, user)
        assert delivery_push(delivery_id=resolved.pk) == "skipped: already resolved"
        assert fcm.messages_to(phone.token) == []
        assert resolved.status == "resolved" and resolved.push_attempts == 0
        assert not DeliveryAttempt.objects.filter(delivery=resolved, channel="fcm").exists()

    def test_each_recipient_is_told_once_with_their_own_unread_count_and_twice_changes_nothing(
        self, redis_client, replacements_queued, django_capture_on_commit_callbacks
    ):
        busy, idle = UserFactory(), UserFactory()
        notification = publish(busy, idle)
        publish(busy, subject="")  # busy has one more unread
        pushed = delivery_of(notification, idle)
        Delivery.objects.filter(pk=pushed.pk).update(status="pushed", pushed_at=timezone.now(), push_attempts=1)
        listener = LayerListener([layer.user_group(busy.pk), layer.user_group(idle.pk)])
        try:
            with django_capture_on_commit_callbacks(execute=True):
                notifications_resolve(subject=SUBJECT, resolution="withdrawn")
            messages = listener.drain()
            with django_capture_on_commit_callbacks(execute=True) as second_callbacks:
                again = notifications_resolve(subject=SUBJECT, resolution="withdrawn")
            assert listener.drain(timeout=0.3) == []
        finally:
            listener.close()

        by_group = {message["group"]: message for message in messages}
        assert len(messages) == 2
        resolved_at = Notification.objects.get(pk=notification.pk).resolved_at
        expected = [{"id": str(notification.pk), "resolution": "withdrawn", "resolved_at": resolved_at.isoformat()}]
        assert by_group[layer.user_group(busy.pk)] == {
            "type": "notifications.resolved",
            "group": layer.user_group(busy.pk),
            "notifications": expected,
            "unread_count": 1,
        }
        assert by_group[layer.user_group(idle.pk)]["unread_count"] == 0
        assert (again.notifications, again.deliveries, again.recipients) == (0, 0, 0)
        assert second_callbacks == []
        assert replacements_queued == [pushed.pk]  # once, from the first call

    def test_a_read_recipient_is_still_told_so_its_devices_drop_it(
        self, redis_client, replacements_queued, django_capture_on_commit_callbacks
    ):
        reader = UserFactory()
        notification = publish(reader)
        delivery_mark_read(user_id=reader.pk, notification_id=notification.pk)
        listener = LayerListener([layer.user_group(reader.pk)])
        try:
            with django_capture_on_commit_callbacks(execute=True):
                result = notifications_resolve(subject=SUBJECT, resolution="done")
            [message] = listener.drain()
        finally:
            listener.close()

        assert (result.deliveries, result.recipients) == (0, 1)
        assert message["notifications"][0]["id"] == str(notification.pk)
        assert delivery_of(notification, reader).status == "read"

    def test_an_empty_subject_is_refused(self):
        with pytest.raises(ValueError, match="subject"):
            notifications_resolve(subject="", resolution="done")


@pytest.mark.django_db
class TestRetract:
    def test_the_publisher_retracts_its_own(self, redis_client, replacements_queued):
        publisher, recipient = UserFactory(), UserFactory()
        notification = publish(recipient, subject="", published_by_id=publisher.pk)

        result = notification_retract(notification_id=notification.pk, by=publisher)

        assert (result.notifications, result.deliveries) == (1, 1)
        assert delivery_of(notification, recipient).status == "resolved"
        assert Notification.objects.get(pk=notification.pk).resolution == "retracted"
        assert notification_retract(notification_id=notification.pk, by=publisher).deliveries == 0

    @pytest.mark.parametrize("who", ["recipient", "stranger", "staff"])
    def test_anyone_else_is_told_not_found_and_nothing_changes(self, who, redis_client, replacements_queued):
        publisher, recipient = UserFactory(), UserFactory()
        notification = publish(recipient, subject="", published_by_id=publisher.pk)
        caller = {"recipient": recipient, "stranger": UserFactory(), "staff": UserFactory(is_staff=True)}[who]

        with pytest.raises(NotificationError) as refused:
            notification_retract(notification_id=notification.pk, by=caller)

        assert refused.value.code == "not_found"
        assert delivery_of(notification, recipient).status == "pending"
        assert Notification.objects.get(pk=notification.pk).resolved_at is None


@pytest.mark.django_db
class TestReplacementPush:
    def test_a_pushed_notification_is_replaced_on_its_device_with_the_same_tag(self, fcm, redis_client):
        user = UserFactory()
        phone, gone_before = DeviceFactory(user=user), DeviceFactory(user=user)
        fcm.script(gone_before.token, Reply(error="UNREGISTERED"))
        notification = publish(user)
        delivery = delivery_of(notification, user)
        assert delivery_push(delivery_id=delivery.pk) == "pushed"
        notifications_resolve(subject=SUBJECT, resolution="done")

        assert delivery_push_replacement(delivery_id=delivery.pk) == "replaced on 1 of 1 device(s)"
        assert delivery_push_replacement(delivery_id=delivery.pk) == "skipped: no device shows it"  # once only

        original, replacement = fcm.accepted(phone.token)
        assert replacement["data"] == {
            "notification_id": str(notification.pk),
            "event": "NewTask",
            "resolved": "true",
            "resolution": "done",
            "resolved_at": Notification.objects.get(pk=notification.pk).resolved_at.isoformat(),
        }
        assert replacement["notification"]["title"] == "Done: New task assigned"
        assert replacement["android"]["notification"]["tag"] == original["android"]["notification"]["tag"]
        assert replacement["android"]["notification"]["tag"] == str(notification.pk)
        assert replacement["apns"]["headers"]["apns-collapse-id"] == str(notification.pk)
        assert replacement["webpush"]["notification"]["tag"] == str(notification.pk)
        assert len(fcm.messages_to(gone_before.token)) == 1  # a dead token is not tried again
        assert sorted(fcm_log(delivery)) == ["accepted", "device_gone", "replaced"]

    def test_content_minimal_replaces_with_a_data_only_message(self, fcm, settings, redis_client):
        settings.NOTIFY_PUSH_CONTENT_MINIMAL = True
        user = UserFactory()
        phone = DeviceFactory(user=user)
        delivery = delivery_of(publish(user), user)
        delivery_push(delivery_id=delivery.pk)
        notifications_resolve(subject=SUBJECT, resolution="reassigned")

        delivery_push_replacement(delivery_id=delivery.pk)

        _original, replacement = fcm.accepted(phone.token)
        assert "notification" not in replacement
        assert replacement["data"]["resolution"] == "reassigned"

    def test_an_unresolved_delivery_is_never_replaced(self, fcm, redis_client):
        user = UserFactory()
        DeviceFactory(user=user)
        delivery = delivery_of(publish(user), user)
        delivery_push(delivery_id=delivery.pk)

        assert delivery_push_replacement(delivery_id=delivery.pk) == "skipped: not resolved"


@pytest.mark.django_db(transaction=True)
class TestRaceWithAPush:
    def test_a_push_in_flight_when_the_resolution_commits_is_sent_then_replaced_after_it(
        self, fcm, redis_client, replacements_queued
    ):
        user = UserFactory()
        phone = DeviceFactory(user=user)
        fcm.script(phone.token, Reply(hold=True), OK)
        delivery = delivery_of(publish(user), user)
        pushing = Worker(delivery_push, delivery_id=delivery.pk, claim_id="task-1")
        pushing.start()
        assert fcm.held.wait(10)

        # The claim holds no row lock while FCM is busy: the resolution commits at once.
        notifications_resolve(subject=SUBJECT, resolution="done")
        assert replacements_queued == []  # the round in flight replaces its own push
        fcm.release()

        assert pushing.outcome() == f"{SUPERSEDED}; replaced on 1 of 1 device(s)"
        original, replacement = fcm.accepted(phone.token)  # in this order: the replacement arrives second
        assert "resolved" not in original["data"] and replacement["data"]["resolved"] == "true"
        superseded = Delivery.objects.get(pk=delivery.pk)
        assert superseded.status == "resolved" and superseded.pushed_at is not None
        assert (superseded.push_claimed_by, superseded.push_claimed_until) == ("", None)
        assert fcm_log(superseded) == ["accepted", "superseded", "replaced"]

    def test_a_resolution_before_the_claim_means_no_push_ever(self, fcm, redis_client, replacements_queued):
        user = UserFactory()
        phone = DeviceFactory(user=user)
        delivery = delivery_of(publish(user), user)
        notifications_resolve(subject=SUBJECT, resolution="done")

        assert delivery_push(delivery_id=delivery.pk, claim_id="task-1") == "skipped: already resolved"
        assert fcm.messages_to(phone.token) == []
        assert replacements_queued == []


@pytest.mark.django_db
def test_a_task_closed_for_a_reason_not_known_here_still_resolves_its_notifications(redis_client, replacements_queued):
    user = UserFactory()
    notification = publish(user, subject="task:42")

    task_notifications_resolve(task_id=42, reason="escalated")

    assert Notification.objects.get(pk=notification.pk).resolution == "decided"
    assert delivery_of(notification, user).status == "resolved"


@pytest.mark.django_db
@pytest.mark.parametrize("recipients", [1, 60])
def test_resolving_takes_the_same_statements_whatever_the_number_of_recipients(
    recipients, redis_client, replacements_queued, django_assert_max_num_queries
):
    users = [UserFactory() for _ in range(recipients)]
    publish(*users)

    # The resolving statement, the unread counts, and the transaction's savepoint pair: never one per recipient.
    with django_assert_max_num_queries(4):
        result = notifications_resolve(subject=SUBJECT, resolution="done")

    assert (result.deliveries, result.recipients) == (recipients, recipients)
