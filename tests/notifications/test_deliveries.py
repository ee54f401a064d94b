"""Acknowledge, read and sent transitions, and the dispatch that follows a commit."""

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from notifications import presence
from notifications.errors import NotificationError
from notifications.models import Delivery, DeliveryAttempt
from notifications.selectors import deliveries_to_replay, unread_count
from notifications.services import (
    AckOutcome,
    deliveries_acknowledge_many,
    deliveries_mark_all_read,
    deliveries_mark_resent,
    deliveries_mark_sent,
    delivery_acknowledge,
    delivery_mark_read,
    notification_publish,
)
from notifications.services.deliveries import WEBSOCKET_RETRY_MAX_DELAY, websocket_retry_delay
from tests.support.broker_queue import queued_push_delivery_ids
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def publish_to(*users, **kwargs):
    return notification_publish(event="Ping", title="t", user_ids=[user.pk for user in users], **kwargs)


def delivery(notification, user):
    return Delivery.objects.get(notification=notification, recipient=user)


class TestAcknowledgeMany:
    def test_a_mixed_batch_gets_one_outcome_per_pair_in_order(self, django_assert_max_num_queries):
        alice, bob = UserFactory(), UserFactory()
        fresh, acked_before, bobs = publish_to(alice), publish_to(alice), publish_to(bob)
        pushed = publish_to(alice, bob)
        Delivery.objects.filter(notification=pushed).update(status=Delivery.Status.PUSHED, pushed_at=timezone.now())
        delivery_acknowledge(user_id=alice.pk, notification_id=acked_before.pk)
        acked_at_before = delivery(acked_before, alice).acknowledged_at
        unknown = str(uuid.uuid4())

        pairs = [
            (alice.pk, str(fresh.pk)),
            (alice.pk, acked_before.pk),
            (alice.pk, str(bobs.pk)),  # someone else's
            (alice.pk, unknown),
            (alice.pk, "not-a-uuid"),
            (alice.pk, None),
            (bob.pk, str(bobs.pk)),
            (bob.pk, str(bobs.pk)),  # the same ack twice in one batch
            (alice.pk, str(pushed.pk)),
            (999_999_999, str(fresh.pk)),  # no such user
        ]
        with django_assert_max_num_queries(4):  # savepoint/atomic aside: one UPDATE, one SELECT
            outcomes = deliveries_acknowledge_many(pairs)

        assert outcomes == [
            AckOutcome.ACKNOWLEDGED,
            AckOutcome.ALREADY,
            AckOutcome.NOT_FOUND,
            AckOutcome.NOT_FOUND,
            AckOutcome.NOT_FOUND,
            AckOutcome.NOT_FOUND,
            AckOutcome.ACKNOWLEDGED,
            AckOutcome.ALREADY,
            AckOutcome.ACKNOWLEDGED,
            AckOutcome.NOT_FOUND,
        ]
        for notification, user in [(fresh, alice), (bobs, bob)]:
            acked = delivery(notification, user)
            assert acked.status == Delivery.Status.ACKNOWLEDGED
            assert acked.acknowledged_at is not None
            assert acked.next_attempt_at is None
        assert delivery(acked_before, alice).acknowledged_at == acked_at_before
        assert delivery(bobs, bob).status == Delivery.Status.ACKNOWLEDGED
        late = delivery(pushed, alice)
        assert late.acknowledged_at is not None and late.pushed_at is not None  # recorded, not reopened
        assert delivery(pushed, bob).acknowledged_at is None  # only alice acked the shared notification

    def test_a_batch_of_nothing_valid_touches_nothing(self):
        user = UserFactory()
        notification = publish_to(user)
        assert deliveries_acknowledge_many([(user.pk, "nope"), (user.pk, 7)]) == [AckOutcome.NOT_FOUND] * 2
        assert deliveries_acknowledge_many([]) == []
        assert delivery(notification, user).status == Delivery.Status.PENDING

    def test_a_large_batch_is_persisted(self):
        users = UserFactory.create_batch(5)
        notifications = [publish_to(*users) for _ in range(60)]
        pairs = [(user.pk, str(notification.pk)) for notification in notifications for user in users]
        assert deliveries_acknowledge_many(pairs) == [AckOutcome.ACKNOWLEDGED] * len(pairs)
        assert not Delivery.objects.filter(acknowledged_at__isnull=True).exists()


class TestAcknowledge:
    def test_acknowledge_is_recorded_once(self):
        user = UserFactory()
        notification = publish_to(user)

        assert delivery_acknowledge(user_id=user.pk, notification_id=str(notification.pk)) is True
        first = delivery(notification, user)
        assert delivery_acknowledge(user_id=user.pk, notification_id=notification.pk) is False

        again = delivery(notification, user)
        assert again.status == Delivery.Status.ACKNOWLEDGED
        assert again.acknowledged_at == first.acknowledged_at
        assert again.next_attempt_at is None

    @pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4()), None, 42])
    def test_unknown_ids_are_not_found(self, bad_id):
        user = UserFactory()
        with pytest.raises(NotificationError) as caught:
            delivery_acknowledge(user_id=user.pk, notification_id=bad_id)
        assert caught.value.code == "not_found"

    def test_someone_elses_notification_is_not_found_and_unchanged(self):
        owner, intruder = UserFactory(), UserFactory()
        notification = publish_to(owner)

        with pytest.raises(NotificationError) as caught:
            delivery_acknowledge(user_id=intruder.pk, notification_id=notification.pk)
        assert caught.value.code == "not_found"
        assert delivery(notification, owner).status == Delivery.Status.PENDING

    def test_a_late_ack_after_a_push_makes_it_acknowledged_and_keeps_the_push(self):
        user = UserFactory()
        notification = publish_to(user)
        pushed_at = timezone.now()
        Delivery.objects.filter(notification=notification).update(
            status=Delivery.Status.PUSHED, pushed_at=pushed_at, push_simulated=True
        )

        delivery_acknowledge(user_id=user.pk, notification_id=notification.pk)

        acknowledged = delivery(notification, user)
        assert acknowledged.status == Delivery.Status.ACKNOWLEDGED
        assert (acknowledged.pushed_at, acknowledged.push_simulated) == (pushed_at, True)
        assert acknowledged.acknowledged_at is not None
        assert acknowledged.status_label == "Acknowledged late, after a simulated push"

    @pytest.mark.parametrize("reason", ["no_devices", "push_rejected", "expired"])
    @pytest.mark.parametrize("late", ["ack", "read"])
    def test_a_late_ack_or_read_after_a_failure_clears_the_failure_it_supersedes(self, reason, late):
        user = UserFactory()
        notification = publish_to(user)
        Delivery.objects.filter(notification=notification).update(
            status=Delivery.Status.FAILED, failure_reason=reason, failed_at=timezone.now(), last_error="why"
        )

        if late == "ack":
            delivery_acknowledge(user_id=user.pk, notification_id=notification.pk)
        else:
            delivery_mark_read(user_id=user.pk, notification_id=notification.pk)

        superseded = delivery(notification, user)
        assert superseded.status == ("acknowledged" if late == "ack" else "read")
        assert (superseded.failure_reason, superseded.failed_at, superseded.last_error) == ("", None, "")
        assert superseded.status_label == ("Acknowledged by the app" if late == "ack" else "Read")

    def test_ack_after_read_keeps_read(self):
        user = UserFactory()
        notification = publish_to(user)
        delivery_mark_read(user_id=user.pk, notification_id=notification.pk)

        assert delivery_acknowledge(user_id=user.pk, notification_id=notification.pk) is False
        assert delivery(notification, user).status == Delivery.Status.READ


class TestRead:
    def test_read_acknowledges_and_lowers_unread_count(self):
        user = UserFactory()
        first, second = publish_to(user), publish_to(user)
        assert unread_count(user.pk) == 2

        assert delivery_mark_read(user_id=user.pk, notification_id=first.pk) is True
        assert delivery_mark_read(user_id=user.pk, notification_id=first.pk) is False

        read = delivery(first, user)
        assert (read.status, read.read_at is not None, read.acknowledged_at is not None) == (
            Delivery.Status.READ,
            True,
            True,
        )
        assert unread_count(user.pk) == 1
        assert delivery(second, user).status == Delivery.Status.PENDING

    def test_read_of_someone_elses_notification_is_not_found(self):
        owner, intruder = UserFactory(), UserFactory()
        notification = publish_to(owner)
        with pytest.raises(NotificationError):
            delivery_mark_read(user_id=intruder.pk, notification_id=notification.pk)
        assert unread_count(owner.pk) == 1

    def test_mark_all_read_touches_only_own_unread(self):
        user, other = UserFactory(), UserFactory()
        publish_to(user)
        publish_to(user, other)
        already = publish_to(user)
        delivery_mark_read(user_id=user.pk, notification_id=already.pk)
        read_at_before = delivery(already, user).read_at

        assert deliveries_mark_all_read(user_id=user.pk) == 2

        assert unread_count(user.pk) == 0
        assert unread_count(other.pk) == 1
        assert delivery(already, user).read_at == read_at_before
        assert deliveries_mark_all_read(user_id=user.pk) == 0


class TestReplayAndSent:
    def test_replay_is_oldest_first_without_acknowledged_or_expired(self):
        user = UserFactory()
        old = publish_to(user)
        acknowledged = publish_to(user)
        expiring = publish_to(user, expires_at=timezone.now() + timezone.timedelta(seconds=60))
        new = publish_to(user)
        delivery_acknowledge(user_id=user.pk, notification_id=acknowledged.pk)
        Delivery.objects.filter(notification=expiring).update(created_at=timezone.now())
        expiring.expires_at = timezone.now() - timezone.timedelta(seconds=1)
        expiring.save(update_fields=["expires_at"])

        replayed = [d.notification_id for d in deliveries_to_replay(user.pk)]

        assert replayed == [old.pk, new.pk]

    def test_mark_sent_counts_attempts_and_logs_them_but_never_puts_the_next_step_off(self, settings):
        settings.NOTIFY_ACK_TIMEOUT = 7
        user, other = UserFactory(), UserFactory()
        notification = publish_to(user, other)

        assert deliveries_mark_sent(notification_ids=[notification.pk], recipient_ids=[user.pk]) == 1
        first = delivery(notification, user)
        assert deliveries_mark_sent(notification_ids=[notification.pk], recipient_ids=[user.pk]) == 1

        sent = delivery(notification, user)
        assert (sent.status, sent.attempts, sent.sent_at) == (Delivery.Status.SENT, 2, first.sent_at)
        attempts = list(DeliveryAttempt.objects.filter(delivery=sent))
        assert [(attempt.channel, attempt.outcome) for attempt in attempts] == [("ws", "sent"), ("ws", "sent")]
        assert first.next_attempt_at - attempts[0].created_at == timedelta(seconds=7)
        # A second send (a replay on another connect) counts, but the resend or push due after the first stays due.
        assert sent.next_attempt_at == first.next_attempt_at
        assert delivery(notification, other).status == Delivery.Status.PENDING

    def test_sends_past_the_last_websocket_attempt_change_and_log_nothing(self, settings):
        settings.NOTIFY_MAX_WS_ATTEMPTS = 3
        user = UserFactory()
        notification = publish_to(user)

        counted = [deliveries_mark_sent(notification_ids=[notification.pk], recipient_ids=[user.pk]) for _ in range(50)]

        assert counted == [1, 1, 1] + [0] * 47
        sent = delivery(notification, user)
        assert sent.attempts == 3
        assert sent.attempt_log.count() == 3
        assert sent.next_attempt_at <= timezone.now() + timedelta(seconds=settings.NOTIFY_ACK_TIMEOUT)

    def test_a_send_leaves_a_delivery_in_its_push_rounds_alone(self):
        user = UserFactory()
        notification = publish_to(user)
        retry_at = timezone.now() + timedelta(seconds=40)
        Delivery.objects.filter(notification=notification).update(push_attempts=1, next_attempt_at=retry_at)

        assert deliveries_mark_sent(notification_ids=[notification.pk], recipient_ids=[user.pk]) == 0

        untouched = delivery(notification, user)
        assert (untouched.status, untouched.attempts, untouched.next_attempt_at) == ("pending", 0, retry_at)

    def test_the_sweeps_resend_doubles_the_wait_up_to_a_cap(self, settings):
        settings.NOTIFY_ACK_TIMEOUT = 7
        settings.NOTIFY_MAX_WS_ATTEMPTS = 40
        user = UserFactory()
        notification = publish_to(user)
        deliveries_mark_sent(notification_ids=[notification.pk], recipient_ids=[user.pk])
        sent = delivery(notification, user)

        assert deliveries_mark_resent(delivery_ids=[sent.pk]) == 1
        resent = delivery(notification, user)
        last_send = DeliveryAttempt.objects.filter(delivery=resent).last()
        assert resent.next_attempt_at - last_send.created_at == timedelta(seconds=14)

        Delivery.objects.filter(pk=sent.pk).update(attempts=35)
        deliveries_mark_resent(delivery_ids=[sent.pk])
        capped = delivery(notification, user)
        last_send = DeliveryAttempt.objects.filter(delivery=capped).last()
        assert capped.next_attempt_at - last_send.created_at == WEBSOCKET_RETRY_MAX_DELAY
        assert websocket_retry_delay(36) == WEBSOCKET_RETRY_MAX_DELAY

    def test_mark_sent_never_reopens_acknowledged(self):
        user = UserFactory()
        notification = publish_to(user)
        delivery_acknowledge(user_id=user.pk, notification_id=notification.pk)

        assert deliveries_mark_sent(notification_ids=[notification.pk], recipient_ids=[user.pk]) == 0
        assert delivery(notification, user).status == Delivery.Status.ACKNOWLEDGED


@pytest.mark.django_db(transaction=True)
def test_dispatch_sends_to_online_recipients_and_queues_a_push_for_offline_ones_at_once(redis_client, settings):
    settings.NOTIFY_DISPATCH_GRACE = 30
    online_user, offline_user = UserFactory(), UserFactory()
    redis_client.zadd(presence.presence_key(online_user.pk), {"conn-1": timezone.now().timestamp() + 60})
    redis_client.zadd(presence.presence_key(offline_user.pk), {"crashed": timezone.now().timestamp() - 1})

    notification = publish_to(online_user, offline_user)  # autocommit: dispatch runs at once

    assert delivery(notification, online_user).status == Delivery.Status.SENT
    offline = delivery(notification, offline_user)
    assert offline.status == Delivery.Status.PENDING
    # Queued now, not when the sweep would get to it (after the grace period).
    assert queued_push_delivery_ids(redis_client) == [offline.pk]
    assert list(offline.attempt_log.values_list("channel", "outcome")) == [("ws", "no_connection")]
    assert offline.next_attempt_at == notification.created_at + timedelta(seconds=30)
    assert presence.online_user_ids([online_user.pk, offline_user.pk]) == {online_user.pk}


@pytest.mark.django_db(transaction=True)
def test_nothing_leaves_before_the_publishing_transaction_commits(redis_client):
    user = UserFactory()
    with transaction.atomic():
        notification = publish_to(user)
        assert queued_push_delivery_ids(redis_client) == []
    assert queued_push_delivery_ids(redis_client) == [delivery(notification, user).pk]


@pytest.mark.django_db(transaction=True)
def test_dispatch_with_redis_down_leaves_rows_pending_and_does_not_raise(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    presence._sync_client = None
    try:
        user = UserFactory()
        notification = publish_to(user)
    finally:
        presence._sync_client = None
    assert delivery(notification, user).status == Delivery.Status.PENDING
