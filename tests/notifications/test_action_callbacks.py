"""Calling a publisher back about a performed action (services/action_callbacks.py): a signed POST to a real HTTP
server on 127.0.0.1, each attempt counted, given up after NOTIFY_ACTION_CALLBACK_MAX_ATTEMPTS."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.dispatch import ACTION_CALLBACK_TASK
from notifications.models import ActionCallback, ActionPerformance
from notifications.services import action_callback_deliver, notification_action_perform
from notifications.services.action_callbacks import SIGNATURE_HEADER, CallbackNotDelivered, action_callbacks_resume
from tests.support.actions import action, invoice_with_actions
from tests.support.api import closed_port
from tests.support.callback_server import CallbackServer
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def callback_server():
    server = CallbackServer().start()
    yield server
    server.stop()


@pytest.fixture
def performance(callback_server) -> ActionPerformance:
    publisher, recipient = UserFactory(), UserFactory(username="ada")
    ActionCallback.objects.create(publisher=publisher, url=callback_server.url)
    notification = invoice_with_actions(
        publisher=publisher,
        recipient=recipient,
        actions=[action("dispute", "Dispute", requires_comment=True)],
        subject="invoice:42",
    )
    notification_action_perform(notification_id=notification.pk, user=recipient, action="dispute", comment="Paid")
    return ActionPerformance.objects.get()


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a publisher does with the header: recompute the HMAC over "<t>.<body>" and compare."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_the_publisher_receives_a_signed_json_body_and_the_call_is_delivered(callback_server, performance):
    assert action_callback_deliver(performance_id=performance.pk) == "delivered"

    [call] = callback_server.calls
    assert call.path == "/notifyhub/actions"
    assert call.headers["Content-Type"] == "application/json"
    secret = ActionCallback.objects.get().secret
    assert verify(secret, call.headers[SIGNATURE_HEADER], call.body)
    assert not verify("another secret", call.headers[SIGNATURE_HEADER], call.body)
    assert json.loads(call.body) == {
        "notificationId": str(performance.notification_id),
        "event": "InvoiceOverdue",
        "subject": "invoice:42",
        "action": "dispute",
        "comment": "Paid",
        "userId": performance.user_id,
        "username": "ada",
        "performedAt": performance.performed_at.isoformat(),
        "idempotencyKey": f"action-{performance.pk}",
    }
    performance.refresh_from_db()
    assert (performance.callback_status, performance.callback_attempts) == ("delivered", 1)
    assert performance.callback_delivered_at is not None

    assert action_callback_deliver(performance_id=performance.pk) == "not pending"  # a redelivered task
    assert len(callback_server.calls) == 1


def test_a_failing_publisher_is_retried_until_the_last_attempt_then_the_call_failed(
    callback_server, performance, settings
):
    settings.NOTIFY_ACTION_CALLBACK_MAX_ATTEMPTS = 3
    callback_server.script(500, 503, 502)

    for attempt in (1, 2):
        with pytest.raises(CallbackNotDelivered, match="HTTP 50"):
            action_callback_deliver(performance_id=performance.pk)
        performance.refresh_from_db()
        assert (performance.callback_status, performance.callback_attempts) == ("pending", attempt)
    assert action_callback_deliver(performance_id=performance.pk) == "failed after 3 attempts: HTTP 502: "

    performance.refresh_from_db()
    assert (performance.callback_status, performance.callback_attempts) == ("failed", 3)
    assert performance.callback_last_error == "HTTP 502: "
    assert [call.status for call in callback_server.calls] == [500, 503, 502]
    idempotency_keys = {json.loads(call.body)["idempotencyKey"] for call in callback_server.calls}
    assert idempotency_keys == {f"action-{performance.pk}"}


def test_an_unreachable_publisher_is_retried(performance):
    ActionCallback.objects.update(url=f"http://127.0.0.1:{closed_port()}/hook")

    with pytest.raises(CallbackNotDelivered, match="ConnectionError"):
        action_callback_deliver(performance_id=performance.pk)

    performance.refresh_from_db()
    assert (performance.callback_status, performance.callback_attempts) == ("pending", 1)


def test_a_publisher_that_removed_its_callback_is_not_called(callback_server, performance):
    ActionCallback.objects.all().delete()

    assert action_callback_deliver(performance_id=performance.pk) == "failed: no callback"

    performance.refresh_from_db()
    assert performance.callback_status == "failed"
    assert callback_server.calls == []


def queued_callback_ids(redis_client) -> list[int]:
    """Performance ids of the callback tasks waiting in the default Celery queue (no worker runs here)."""
    queued = []
    for raw in redis_client.lrange("celery", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == ACTION_CALLBACK_TASK:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            queued.append(args[0])
    return queued


def test_a_call_whose_task_was_lost_is_queued_again_once_it_is_due(
    performance, redis_client, django_capture_on_commit_callbacks
):
    assert performance.callback_due_at > timezone.now() + timedelta(minutes=10)  # its own task has that long
    with django_capture_on_commit_callbacks(execute=True):
        assert action_callbacks_resume() == 0

    ActionPerformance.objects.update(callback_due_at=timezone.now() - timedelta(seconds=1))  # nobody tried it
    with django_capture_on_commit_callbacks(execute=True):
        assert action_callbacks_resume() == 1

    assert queued_callback_ids(redis_client) == [performance.pk]
    performance.refresh_from_db()
    assert performance.callback_due_at > timezone.now() + timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        assert action_callbacks_resume() == 0  # queued once, not on every beat


def test_a_finished_call_is_never_due(callback_server, performance):
    action_callback_deliver(performance_id=performance.pk)

    performance.refresh_from_db()
    assert (performance.callback_status, performance.callback_due_at) == ("delivered", None)
