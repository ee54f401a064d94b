"""Actions performed from the notification on a device, with a real daphne hub and a real Celery worker: the other
device's copy is resolved within a second and never pushed; both protocols carry the actions and perform them;
a publisher's action reaches its callback, signed, through the worker."""

import hashlib
import hmac
import json
import time

import pytest

from notifications.models import ActionCallback, ActionPerformance, Delivery, DeliveryAttempt, Notification
from notifications.services import notification_publish
from notifications.services.action_callbacks import SIGNATURE_HEADER
from tests.notifications.hub import test_resolution
from tests.support.actions import action, invoice_with_actions
from tests.support.callback_server import CallbackServer
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.signalr_client import targeting
from tests.support.waiting import eventually
from workflow import services as workflow

pytestmark = pytest.mark.django_db(transaction=True)

# The real worker (with the fake FCM) and devices (a native and a SignalR connection of a user) come from the hub's
# conftest; the document and its NewTask from the resolution tests.
document = test_resolution.document
new_task, RESOLVED_WITHIN = test_resolution.new_task, test_resolution.RESOLVED_WITHIN

NEW_TASK_ACTIONS_NATIVE = [
    {"id": "approve", "label": "Approve", "requires_comment": False},
    {"id": "reject", "label": "Reject", "requires_comment": True},
]
NEW_TASK_ACTIONS_SIGNALR = [
    {"id": "approve", "label": "Approve", "requiresComment": False},
    {"id": "reject", "label": "Reject", "requiresComment": True},
]


def test_approved_on_one_device_the_other_devices_copy_is_resolved_within_a_second_and_never_pushed(
    worker, fcm, devices, document, requester, approvers
):
    approver = approvers[0]
    phone = DeviceFactory(user=approver)
    native, signalr = devices(approver)
    workflow.document_submit(document=document, submitted_by=requester)
    frame = native.frames_until(lambda frame: frame["type"] == "notification" and frame["event"] == "NewTask")[-1]
    argument = signalr.next_message(targeting("NewTask", frame["id"]))["arguments"][0]
    assert frame["actions"] == NEW_TASK_ACTIONS_NATIVE
    assert argument["actions"] == NEW_TASK_ACTIONS_SIGNALR
    notification_id = frame["id"]
    # Published at the same moment: once it is pushed, the NewTask would have been too, had it not been resolved.
    control = notification_publish(event="Ping", title="Control", user_ids=[approver.pk])

    started = time.monotonic()
    native.send(type="action", id=notification_id, action="approve", comment="Looks right")
    *before, result = native.frames_until(lambda frame: frame["type"] == "action_result")
    resolved = signalr.next_message(targeting("NotificationResolved", notification_id), timeout=RESOLVED_WITHIN)
    assert time.monotonic() - started < RESOLVED_WITHIN

    performance = ActionPerformance.objects.get()
    assert result == {
        "type": "action_result",
        "id": notification_id,
        "action": "approve",
        "outcome": "approved",
        "performed_at": performance.performed_at.isoformat(),
        "already_performed": False,
    }
    assert resolved["arguments"][0]["resolution"] == "done"
    # The device that acted is told too (a resolution comes from the work), before or after its answer.
    if not any(frame["type"] == "resolved" for frame in before):
        native.frames_until(lambda frame: frame["type"] == "resolved" and frame["id"] == notification_id)
    step = document.steps.get(order=1)
    assert (step.status, step.decided_by_id, step.comment) == ("approved", approver.pk, "Looks right")

    assert eventually(
        lambda: Delivery.objects.get(notification=control, recipient=approver).status == Delivery.Status.PUSHED,
        timeout=30,
    ), worker.logs()
    delivery = Delivery.objects.get(notification_id=notification_id)
    assert (delivery.status, delivery.push_attempts, delivery.pushed_at) == ("resolved", 0, None)
    assert not DeliveryAttempt.objects.filter(delivery=delivery, channel="fcm").exists()
    assert [message["data"]["notification_id"] for message in fcm.messages_to(phone.token)] == [str(control.pk)]


def test_signalr_performs_actions_with_the_workflows_errors_and_a_repeat_is_no_second_decision(
    devices, document, requester, approvers
):
    approver = approvers[0]
    native, signalr = devices(approver)
    workflow.document_submit(document=document, submitted_by=requester)
    notification_id = new_task(native, signalr)

    missing_comment = signalr.invoke("PerformAction", notification_id, "reject", None)
    unknown = signalr.invoke("PerformAction", notification_id, "archive", "")
    wrong_arity = signalr.invoke("PerformAction", notification_id, "reject")
    assert missing_comment["error"] == "'reject' needs a comment saying why."
    assert unknown["error"].startswith("No action 'archive' on this notification")
    assert wrong_arity["error"] == "PerformAction takes 3 arguments (notificationId, action, comment), not 2."
    assert not ActionPerformance.objects.exists()

    rejected = signalr.invoke("PerformAction", notification_id, "reject", "Over budget")
    performed_at = ActionPerformance.objects.get().performed_at.isoformat()
    assert rejected["result"] == {
        "notificationId": notification_id,
        "action": "reject",
        "outcome": "rejected",
        "performedAt": performed_at,
        "alreadyPerformed": False,
    }
    # The other device (native) learns it is done, and performing it there again decides nothing.
    native.frames_until(lambda frame: frame["type"] == "resolved" and frame["id"] == notification_id)
    again = native.request("action_result", type="action", id=notification_id, action="reject", comment="Again")
    assert (again["already_performed"], again["performed_at"]) == (True, performed_at)
    conflict = native.request("action_result", type="action", id=notification_id, action="approve")
    assert (conflict["type"], conflict["code"], conflict["request"]) == ("error", "already_performed", "action")
    document.refresh_from_db()
    assert document.status == "rejected"
    assert ActionPerformance.objects.count() == 1


def test_bad_action_frames_get_error_frames_and_change_nothing(devices, document, requester, approvers):
    native, signalr = devices(approvers[0])
    other, _ = devices(approvers[1])
    workflow.document_submit(document=document, submitted_by=requester)
    notification_id = new_task(native, signalr)

    refusals = [
        (other, {"id": notification_id, "action": "approve"}, "not_found"),
        (native, {"id": "nope", "action": "approve"}, "not_found"),
        (native, {"id": notification_id, "action": "archive"}, "invalid"),
        (native, {"id": notification_id, "action": "reject"}, "invalid"),
        (native, {"id": notification_id, "action": 7}, "invalid"),
        (native, {"id": notification_id, "action": "reject", "comment": ["no"]}, "invalid"),
        (native, {"id": notification_id}, "invalid"),
    ]
    for client, frame, code in refusals:
        reply = client.request("action_result", type="action", **frame)
        assert (reply["type"], reply["code"], reply["request"]) == ("error", code, "action"), (frame, reply)

    workflow.step_approve(document=document, approver=approvers[0])  # decided on the document page meanwhile
    native.frames_until(lambda frame: frame["type"] == "resolved" and frame["id"] == notification_id)
    too_late = native.request("action_result", type="action", id=notification_id, action="approve")
    assert (too_late["type"], too_late["code"]) == ("error", "invalid_transition")
    assert not ActionPerformance.objects.exists()
    assert Notification.objects.get(pk=notification_id).resolution == "done"


def test_a_publishers_action_is_called_back_signed_through_the_worker_and_retried(worker, devices):
    callback_server = CallbackServer().start()
    try:
        callback_server.script(503)  # the first call fails: the worker tries again
        publisher, recipient = UserFactory(), UserFactory()
        callback = ActionCallback.objects.create(publisher=publisher, url=callback_server.url)
        native, signalr = devices(recipient)
        notification = invoice_with_actions(
            publisher=publisher, recipient=recipient, actions=[action("pay", "Pay now")]
        )
        argument = signalr.next_message(targeting("InvoiceOverdue", notification.pk))["arguments"][0]
        assert argument["actions"] == [{"id": "pay", "label": "Pay now", "requiresComment": False}]

        completion = signalr.invoke("PerformAction", str(notification.pk), "pay", None)
        assert completion["result"]["outcome"] == "recorded"

        assert eventually(lambda: ActionPerformance.objects.get().callback_status == "delivered", timeout=30), (
            worker.logs()
        )
        first, second = callback_server.calls
        assert (first.status, second.status) == (503, 200)
        for call in (first, second):
            timestamp, signature = (part.split("=", 1)[1] for part in call.headers[SIGNATURE_HEADER].split(","))
            expected = hmac.new(callback.secret.encode(), f"{timestamp}.".encode() + call.body, hashlib.sha256)
            assert hmac.compare_digest(expected.hexdigest(), signature)
        assert json.loads(second.body)["action"] == "pay"
        assert ActionPerformance.objects.get().callback_attempts == 2
        # The other device hears it was read.
        native.frames_until(lambda frame: frame["type"] == "read" and frame["id"] == str(notification.pk))
    finally:
        callback_server.stop()
