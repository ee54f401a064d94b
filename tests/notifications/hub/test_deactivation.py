"""A deactivated user is cut off at once: sockets closed within seconds, open deliveries failed, nothing pushed."""

import pytest

from notifications.models import Delivery
from notifications.services import delivery_push, notification_publish
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.hub_client import NativeClient, access_token, until_notification
from tests.support.signalr_client import SignalRSocket

pytestmark = pytest.mark.django_db(transaction=True)


def test_deactivating_a_user_closes_their_sockets_and_fails_their_open_deliveries(hub_server, redis_client, fcm):
    user, colleague = UserFactory(), UserFactory()
    DeviceFactory(user=user)
    native = NativeClient.connect(hub_server, token=access_token(user))
    native.start()
    signalr = SignalRSocket.started(hub_server, token=access_token(user))
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk, colleague.pk])
    native.frames_until(until_notification(notification.pk))  # shown, never acknowledged

    user.is_active = False
    user.save()  # what the admin's change form does

    closed = native.closed()
    assert (closed.code, closed.reason) == (4401, "user unknown or inactive")
    assert closed.frames[-1] == {"type": "error", "code": "unauthorized", "message": "user unknown or inactive"}
    signalr_closed = signalr.closed()
    assert signalr_closed.frames[-1] == {"type": 7, "error": "Unauthorized: user unknown or inactive"}
    failed = Delivery.objects.get(notification=notification, recipient=user)
    assert (failed.status, failed.failure_reason) == (Delivery.Status.FAILED, "recipient_inactive")
    assert Delivery.objects.get(notification=notification, recipient=colleague).status == Delivery.Status.PENDING
    assert delivery_push(delivery_id=failed.pk) == "skipped: already failed"
    assert fcm.requests == []


def test_a_user_deactivated_without_a_signal_is_never_pushed(fcm):
    user = UserFactory()
    DeviceFactory(user=user)
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # a bulk update: no post_save

    delivery = Delivery.objects.get(notification=notification)
    assert delivery_push(delivery_id=delivery.pk) == "failed: recipient_inactive"
    assert Delivery.objects.get(pk=delivery.pk).failure_reason == "recipient_inactive"
    assert fcm.requests == []
