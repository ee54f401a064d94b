"""Preferences end to end: a real daphne hub, a real Celery worker and beat, the fake FCM server.

Quiet hours hold the push (never the socket) until they end, and a retraction meanwhile means no push at all;
push turned off ends in the inbox only; a muted event type reaches neither socket protocol.
"""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from notifications.explain import explain_delivery
from notifications.models import Delivery, DeliveryAttempt, EventPreference, UserPreferences
from notifications.services import notification_publish, notification_retract
from tests.support.factories import DepartmentFactory, DeviceFactory, UserFactory, add_members
from tests.support.hub_client import until_notification
from tests.support.signalr_client import targeting
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

QUIET_FOR = timedelta(seconds=6)  # long enough for the worker to hold the push first, on a busy 2-core machine


def quiet_until(user, end: datetime, zone: str = "America/New_York") -> None:
    """Quiet hours for `user` in `zone` from an hour ago until `end` (their wall clock)."""
    local_end = end.astimezone(zoneinfo.ZoneInfo(zone))
    UserPreferences.objects.create(
        user=user,
        time_zone=zone,
        quiet_hours_start=(local_end - timedelta(hours=1)).time(),
        quiet_hours_end=local_end.time(),
    )


def held(notification, user) -> bool:
    return DeliveryAttempt.objects.filter(
        delivery__notification=notification, delivery__recipient=user, outcome=DeliveryAttempt.Outcome.DEFERRED
    ).exists()


def delivery_of(notification, user) -> Delivery:
    return Delivery.objects.get(notification=notification, recipient=user)


def test_inside_quiet_hours_the_sockets_get_it_live_and_the_push_goes_out_when_they_end(worker, fcm, devices):
    ada = UserFactory()
    phone = DeviceFactory(user=ada)
    end = datetime.now(UTC) + QUIET_FOR
    quiet_until(ada, end)
    native, signalr = devices(ada)

    notification = notification_publish(event="InvoiceOverdue", title="Pay", user_ids=[ada.pk])

    # Live on both protocols at once (never acknowledged here, so the push fallback follows the sends).
    native.frames_until(until_notification(str(notification.pk)))
    signalr.next_message(targeting("InvoiceOverdue", str(notification.pk)))
    assert eventually(lambda: held(notification, ada), timeout=QUIET_FOR.total_seconds()), worker.logs()
    assert datetime.now(UTC) < end and fcm.messages_to(phone.token) == []
    assert delivery_of(notification, ada).next_attempt_at == end

    assert eventually(lambda: delivery_of(notification, ada).status == Delivery.Status.PUSHED, timeout=30), (
        worker.logs()
    )
    assert delivery_of(notification, ada).pushed_at >= end
    assert [message["data"]["notification_id"] for message in fcm.messages_to(phone.token)] == [str(notification.pk)]


def test_a_push_held_for_quiet_hours_is_never_pushed_if_retracted_before_they_end(worker, fcm):
    publisher, ada = UserFactory(), UserFactory()
    phone = DeviceFactory(user=ada)
    end = datetime.now(UTC) + QUIET_FOR
    quiet_until(ada, end, zone="Asia/Kolkata")
    retracted = notification_publish(event="Offer", title="50% off", user_ids=[ada.pk], published_by_id=publisher.pk)
    # Held alongside it with the same end: once it is pushed, the retracted one would have been too.
    control = notification_publish(event="Offer", title="Control", user_ids=[ada.pk], published_by_id=publisher.pk)
    assert eventually(lambda: held(retracted, ada) and held(control, ada), timeout=QUIET_FOR.total_seconds()), (
        worker.logs()
    )

    notification_retract(notification_id=retracted.pk, by=publisher)

    assert eventually(lambda: delivery_of(control, ada).status == Delivery.Status.PUSHED, timeout=30), worker.logs()
    gone = delivery_of(retracted, ada)
    assert (gone.status, gone.push_attempts, gone.pushed_at) == ("resolved", 0, None)
    assert [message["data"]["notification_id"] for message in fcm.messages_to(phone.token)] == [str(control.pk)]


def test_push_turned_off_leaves_it_in_the_inbox_and_explains_why_it_was_not_pushed(worker, fcm):
    ada = UserFactory()
    phone = DeviceFactory(user=ada)
    EventPreference.objects.create(user=ada, event="Digest", push=False)

    digest = notification_publish(event="Digest", title="Weekly", user_ids=[ada.pk])
    control = notification_publish(event="Ping", title="Ping", user_ids=[ada.pk])

    assert eventually(lambda: delivery_of(control, ada).status == Delivery.Status.PUSHED, timeout=30), worker.logs()
    assert eventually(lambda: delivery_of(digest, ada).status == Delivery.Status.FAILED, timeout=10), worker.logs()
    delivery = delivery_of(digest, ada)
    assert (delivery.failure_reason, delivery.read_at) == ("push_off", None)  # unread in the inbox
    assert "push turned off by the user for Digest" in explain_delivery(delivery).summary
    assert [message["data"]["notification_id"] for message in fcm.messages_to(phone.token)] == [str(control.pk)]


def test_a_muted_event_type_reaches_neither_socket_protocol(devices):
    ada, grace = UserFactory(), UserFactory()
    EventPreference.objects.create(user=ada, event="Lunch", muted=True)
    ada_native, ada_signalr = devices(ada)
    grace_native, _ = devices(grace)

    lunch = notification_publish(event="Lunch", title="Pizza", user_ids=[ada.pk, grace.pk])
    after = notification_publish(event="Ping", title="After", user_ids=[ada.pk])

    grace_native.frames_until(until_notification(str(lunch.pk)))
    # The first notification ada's connections show is the one published after: the lunch never came.
    frames = ada_native.frames_until(lambda frame: frame["type"] == "notification")
    assert [frame["id"] for frame in frames if frame["type"] == "notification"] == [str(after.pk)]
    messages = ada_signalr.messages_until(lambda message: message.get("type") == 1)
    assert [message["target"] for message in messages if message.get("type") == 1] == ["Ping"]
    assert not Delivery.objects.filter(notification=lunch, recipient=ada).exists()


def test_a_department_notification_skips_the_member_who_muted_its_event_type(devices):
    ada, grace = UserFactory(), UserFactory()
    department = DepartmentFactory()
    add_members(department, ada, grace)
    EventPreference.objects.create(user=ada, event="Lunch", muted=True)
    ada_native, ada_signalr = devices(ada)
    grace_native, grace_signalr = devices(grace)

    lunch = notification_publish(event="Lunch", title="Pizza", department_ids=[department.pk])
    after = notification_publish(event="Ping", title="After", department_ids=[department.pk])

    grace_native.frames_until(until_notification(str(after.pk)))
    grace_signalr.next_message(targeting("Lunch", str(lunch.pk)))
    # Both went through the department's group: ada's connections, members of it, show only the second.
    frames = ada_native.frames_until(lambda frame: frame["type"] == "notification")
    assert [frame["id"] for frame in frames if frame["type"] == "notification"] == [str(after.pk)]
    message = ada_signalr.next_message(lambda message: message.get("type") == 1)
    assert message["target"] == "Ping"
    assert lunch.recipient_count == 1
