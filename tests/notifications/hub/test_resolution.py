"""A task's notification leaves every device when the work is done: from the workflow (API or service) to the
recipient's sockets, native and SignalR, with a real daphne hub and a real Celery worker pushing to the fake FCM."""

import pytest

from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import notification_publish
from tests.support.api import client_for
from tests.support.factories import DeviceFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient
from tests.support.signalr_client import SignalRSocket, targeting
from tests.support.waiting import eventually
from workflow import services as workflow
from workflow.models import Task

pytestmark = pytest.mark.django_db(transaction=True)

RESOLVED_WITHIN = 1.0  # seconds from the workflow change to the frame on every other device


@pytest.fixture
def document(requester, department, approvers):
    return workflow.document_create(requester=requester, department=department, title="Q3", approvers=approvers)


def new_task(native: NativeClient, signalr: SignalRSocket) -> str:
    """The NewTask both connections show (never acknowledged here); its notification id."""
    frame = native.frames_until(lambda frame: frame["type"] == "notification" and frame["event"] == "NewTask")[-1]
    signalr.next_message(targeting("NewTask", frame["id"]))
    return frame["id"]


def resolved_frames(native: NativeClient, signalr: SignalRSocket, notification_id: str) -> tuple[dict, dict]:
    frame = native.frames_until(
        lambda frame: frame["type"] == "resolved" and frame["id"] == notification_id, timeout=RESOLVED_WITHIN
    )[-1]
    message = signalr.next_message(targeting("NotificationResolved", notification_id), timeout=RESOLVED_WITHIN)
    return frame, message["arguments"][0]


def test_approved_from_the_api_the_new_task_leaves_the_approvers_other_devices_and_is_never_pushed(
    worker, fcm, devices, document, requester, approvers
):
    approver = approvers[0]
    phone = DeviceFactory(user=approver)
    native, signalr = devices(approver)
    workflow.document_submit(document=document, submitted_by=requester)
    notification_id = new_task(native, signalr)
    # A notification nobody resolves, published at the same moment: once it is pushed, the NewTask would have
    # been too (same recipient, same timings) had it not been resolved.
    control = notification_publish(event="Ping", title="Control", user_ids=[approver.pk])

    response = client_for(approver).post(f"/api/documents/{document.pk}/approve/", {}, format="json")
    assert response.status_code == 200, response.content

    frame, argument = resolved_frames(native, signalr, notification_id)
    resolved_at = Notification.objects.get(pk=notification_id).resolved_at.isoformat()
    assert frame == {
        "type": "resolved",
        "id": notification_id,
        "resolution": "done",
        "resolved_at": resolved_at,
        "unread_count": 1,  # the control
    }
    assert argument == {
        "notificationId": notification_id,
        "resolution": "done",
        "resolvedAt": resolved_at,
        "unreadCount": 1,
    }
    assert eventually(
        lambda: Delivery.objects.get(notification=control, recipient=approver).status == Delivery.Status.PUSHED,
        timeout=30,
    ), worker.logs()
    resolved = Delivery.objects.get(notification_id=notification_id)
    assert (resolved.status, resolved.push_attempts, resolved.pushed_at) == ("resolved", 0, None)
    assert not DeliveryAttempt.objects.filter(delivery=resolved, channel="fcm").exists()
    assert [message["data"]["notification_id"] for message in fcm.messages_to(phone.token)] == [str(control.pk)]


def test_reassigned_the_old_approvers_task_is_resolved_and_the_new_one_gets_a_new_task(
    devices, document, requester, approvers, department
):
    newcomer = UserFactory()
    add_members(department, newcomer)
    old_native, old_signalr = devices(approvers[0])
    new_native, new_signalr = devices(newcomer)
    workflow.document_submit(document=document, submitted_by=requester)
    notification_id = new_task(old_native, old_signalr)

    workflow.step_reassign(document=document, reassigned_by=approvers[0], new_approver=newcomer)

    frame, argument = resolved_frames(old_native, old_signalr, notification_id)
    assert (frame["resolution"], frame["unread_count"]) == ("reassigned", 0)
    assert argument["resolution"] == "reassigned"
    new_id = new_task(new_native, new_signalr)
    assert Notification.objects.get(pk=new_id).subject == f"task:{Task.objects.get(status='open').pk}"


def test_withdrawn_from_the_api_the_approvers_task_is_resolved_on_every_device(devices, document, requester, approvers):
    native, signalr = devices(approvers[0])
    workflow.document_submit(document=document, submitted_by=requester)
    notification_id = new_task(native, signalr)

    response = client_for(requester).post(f"/api/documents/{document.pk}/withdraw/", {}, format="json")
    assert response.status_code == 200, response.content

    frame, argument = resolved_frames(native, signalr, notification_id)
    assert (frame["resolution"], argument["resolution"]) == ("withdrawn", "withdrawn")


def test_a_resolved_notification_is_not_replayed_and_hello_counts_it_as_read(devices, document, requester, approvers):
    workflow.document_submit(document=document, submitted_by=requester)
    workflow.document_withdraw(document=document, withdrawn_by=requester)

    native, signalr = devices(approvers[0])

    assert native.replayed == [] and signalr.replayed == []
    assert native.hello["unread_count"] == 0
