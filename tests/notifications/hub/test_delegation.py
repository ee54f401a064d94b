"""Out of office, end to end: a delegated task reaches the delegate and is decided on behalf of the approver.

Real daphne hub (native and SignalR sockets), real Celery worker and sweep pushing to the fake FCM server, all
driven through the API: bob names carol his delegate, alice submits, carol's sockets get the NewTask on bob's
behalf, bob's socket gets the in-app TaskDelegated that never reaches his phone, carol approves, and alice reads
"approved by carol on behalf of bob".
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import notification_publish
from tests.support.api import client_for
from tests.support.factories import DeviceFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient, access_token
from tests.support.signalr_client import targeting
from tests.support.waiting import eventually
from workflow.models import ApprovalStep, Task

pytestmark = pytest.mark.django_db(transaction=True)


def notification_frame(native: NativeClient, event: str) -> dict:
    return native.frames_until(lambda frame: frame["type"] == "notification" and frame["event"] == event)[-1]


def test_a_delegated_task_reaches_the_delegate_and_is_decided_on_behalf(
    worker,
    fcm,
    devices,
    hub_server,
    department,
    requester,
):
    bob = UserFactory(first_name="Bob", last_name="Baker")
    carol = UserFactory(first_name="Carol", last_name="Cole")
    add_members(department, bob, carol)
    bobs_phone, carols_phone = DeviceFactory(user=bob), DeviceFactory(user=carol)
    ends_at = timezone.now() + timedelta(days=2)
    away = client_for(bob).post(
        "/api/me/delegations/", {"delegate": carol.username, "ends_at": ends_at.isoformat()}, format="json"
    )
    assert away.status_code == 201, away.content
    carol_native, carol_signalr = devices(carol)
    bob_native = NativeClient.connect(hub_server, token=access_token(bob))
    bob_native.start()
    alice = NativeClient.connect(hub_server, token=access_token(requester))
    alice.start()
    alice_api = client_for(requester)
    created = alice_api.post(
        "/api/documents/", {"title": "Q3", "department": department.code, "approvers": [bob.pk]}, format="json"
    )
    document_id = created.json()["id"]

    submitted = alice_api.post(f"/api/documents/{document_id}/submit/", {}, format="json")
    assert submitted.status_code == 200, submitted.content
    # The same moment, a notification to bob that may be pushed: once it is, TaskDelegated would have been too.
    control = notification_publish(event="Ping", title="Control", user_ids=[bob.pk])

    new_task = notification_frame(carol_native, "NewTask")
    assert new_task["data"]["onBehalfOf"] == "Bob Baker"
    assert "Bob Baker is out of office, so you decide on their behalf" in new_task["body"]
    argument = carol_signalr.next_message(targeting("NewTask", new_task["id"]))["arguments"][0]
    assert argument["onBehalfOf"] == "Bob Baker"
    delegated = notification_frame(bob_native, "TaskDelegated")
    assert delegated["data"]["delegatedTo"] == "Carol Cole"
    assert delegated["data"]["delegatedUntil"] == ends_at.isoformat()
    bob_native.frames_until(lambda frame: frame.get("id") == str(control.pk))

    # bob acknowledges neither: after the WebSocket sends, the control is pushed and TaskDelegated is not.
    assert eventually(
        lambda: Delivery.objects.get(notification=control).status == Delivery.Status.PUSHED, timeout=30
    ), worker.logs()
    assert eventually(
        lambda: Delivery.objects.get(notification_id=delegated["id"]).status == Delivery.Status.FAILED, timeout=30
    ), worker.logs()
    note = Delivery.objects.get(notification_id=delegated["id"])
    assert (note.failure_reason, note.push_attempts, note.pushed_at) == ("in_app_only", 0, None)
    assert not DeliveryAttempt.objects.filter(delivery=note, channel="fcm").exists()
    assert [message["data"]["notification_id"] for message in fcm.messages_to(bobs_phone.token)] == [str(control.pk)]
    # carol did not acknowledge her NewTask either: her phone gets it, on bob's behalf.
    assert eventually(
        lambda: Delivery.objects.get(notification_id=new_task["id"]).status == Delivery.Status.PUSHED, timeout=30
    ), worker.logs()
    [pushed] = fcm.messages_to(carols_phone.token)
    assert (pushed["data"]["notification_id"], pushed["data"]["event"]) == (new_task["id"], "NewTask")
    assert json.loads(pushed["data"]["data"])["onBehalfOf"] == "Bob Baker"

    approved = client_for(carol).post(f"/api/documents/{document_id}/approve/", {"comment": "ok"}, format="json")

    assert approved.status_code == 200, approved.content
    decision = notification_frame(alice, "DocumentApproved")
    assert decision["body"] == "Carol Cole on behalf of Bob Baker approved your document “Q3”."
    assert (decision["data"]["approvedBy"], decision["data"]["onBehalfOf"]) == ("Carol Cole", "Bob Baker")
    step = ApprovalStep.objects.get(document_id=document_id)
    assert (step.decided_by, step.decided_on_behalf_of) == (carol, bob)
    assert Task.objects.get(document_id=document_id).on_behalf_of == bob
    resolved = carol_native.frames_until(lambda frame: frame["type"] == "resolved")[-1]
    assert (resolved["id"], resolved["resolution"]) == (new_task["id"], "done")
    assert Notification.objects.get(pk=delegated["id"]).resolution == "done"
    bob_native.close()
    alice.close()
