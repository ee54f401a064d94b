"""An ignored task reminds its approver and then escalates to the department's contact at the configured times,
driven by the real Celery beat and sweeper; both arrive on the native and SignalR sockets and as FCM push data, and
the decision resolves them everywhere. Short times (seconds) stand in for the days a department would set."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from notifications.models import Delivery, Notification
from tests.support.api import client_for
from tests.support.celery_stack import CeleryStack, empty_test_redis, fake_fcm_environment
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.hub_client import NativeClient
from tests.support.signalr_client import SignalRSocket, targeting
from tests.support.waiting import eventually
from workflow import services as workflow
from workflow.models import Task

pytestmark = pytest.mark.django_db(transaction=True)

REMIND_AFTER = timedelta(seconds=2)
ESCALATE_AFTER = timedelta(seconds=4)
ROUND_INTERVAL = 0.3  # WORKFLOW_ESCALATION_INTERVAL of the beat started here
# From due to done: a beat interval, the sweeper picking the task up, one transaction (a shared 2-core machine).
LATE_BY_AT_MOST = timedelta(seconds=3)


@pytest.fixture(scope="module")
def celery(django_db_setup, fake_fcm_server, tmp_path_factory):
    empty_test_redis()
    environment = fake_fcm_environment(
        fake_fcm_server,
        {
            "WORKFLOW_ESCALATION_INTERVAL": str(ROUND_INTERVAL),
            "NOTIFY_ACK_TIMEOUT": "0.5",
            "NOTIFY_MAX_WS_ATTEMPTS": "1",  # unacknowledged sends go to the phone at once
            "NOTIFY_SWEEP_INTERVAL": "0.3",
        },
    )
    stack = CeleryStack.start(environment=environment, log_dir=tmp_path_factory.mktemp("celery"))
    yield stack
    stack.stop()


@pytest.fixture
def worker(celery, fcm, settings, redis_client) -> CeleryStack:
    settings.NOTIFY_ACK_TIMEOUT, settings.NOTIFY_MAX_WS_ATTEMPTS = 0.5, 1
    yield celery
    with connection.cursor() as cursor:  # see test_delivery_worker.py: let a sweep lose a deadlock, not teardown
        cursor.execute("SET deadlock_timeout = '30s'")


@pytest.fixture
def contact(department):
    carol = UserFactory(username="carol-escalation", first_name="Carol", last_name="Chief")
    department.remind_after, department.escalate_after, department.escalation_contact = (
        REMIND_AFTER,
        ESCALATE_AFTER,
        carol,
    )
    department.save(update_fields=["remind_after", "escalate_after", "escalation_contact"])
    return carol


def arrives(native: NativeClient, signalr: SignalRSocket, event: str) -> tuple[dict, dict]:
    """The `event` notification on both connections: the native frame and the SignalR argument."""
    frame = native.frames_until(lambda frame: frame["type"] == "notification" and frame["event"] == event, timeout=20)
    frame = frame[-1]
    argument = signalr.next_message(targeting(event, frame["id"]), timeout=10)["arguments"][0]
    return frame, argument


def resolved(native: NativeClient, signalr: SignalRSocket, notification_id: str) -> tuple[str, str]:
    frame = native.frames_until(lambda frame: frame["type"] == "resolved" and frame["id"] == notification_id)[-1]
    message = signalr.next_message(targeting("NotificationResolved", notification_id))
    return frame["resolution"], message["arguments"][0]["resolution"]


def pushed(fcm, token: str, event: str) -> dict:
    """The FCM data of the first push of `event` to the device, once it came."""
    assert eventually(lambda: any(m["data"]["event"] == event for m in fcm.messages_to(token)), timeout=20)
    return next(message["data"] for message in fcm.messages_to(token) if message["data"]["event"] == event)


def test_an_ignored_task_reminds_then_escalates_at_the_configured_times_and_the_decision_resolves_both(
    worker, fcm, devices, requester, department, approvers, contact
):
    bob = approvers[0]
    bob_phone, carol_phone = DeviceFactory(user=bob), DeviceFactory(user=contact)
    bob_native, bob_signalr = devices(bob)
    carol_native, carol_signalr = devices(contact)
    document = workflow.document_create(requester=requester, department=department, title="Q3", approvers=[bob])
    response = client_for(requester).post(f"/api/documents/{document.pk}/submit/", {}, format="json")
    assert response.status_code == 200, response.content
    task = Task.objects.get(document=document)
    new_task, _ = arrives(bob_native, bob_signalr, "NewTask")

    reminder, reminder_argument = arrives(bob_native, bob_signalr, "TaskReminder")
    task.refresh_from_db()
    assert task.created_at + REMIND_AFTER <= task.reminded_at <= task.created_at + REMIND_AFTER + LATE_BY_AT_MOST
    assert task.escalated_at is None or task.escalated_at >= task.created_at + ESCALATE_AFTER
    assert reminder["priority"] == "normal"
    assert reminder["data"]["taskId"] == reminder_argument["taskId"] == task.pk
    assert reminder["data"]["url"] == reminder_argument["url"] == f"/documents/{document.pk}/"
    assert reminder["data"]["waitedSeconds"] >= REMIND_AFTER.total_seconds()

    escalation, escalation_argument = arrives(carol_native, carol_signalr, "TaskEscalated")
    task.refresh_from_db()
    assert task.created_at + ESCALATE_AFTER <= task.escalated_at <= task.created_at + ESCALATE_AFTER + LATE_BY_AT_MOST
    assert task.escalated_to_id == contact.pk
    assert escalation["priority"] == "high"
    assert escalation["body"].startswith(f"{bob.get_full_name()} has not decided on “Q3”")
    for data in (escalation["data"], escalation_argument):
        assert (data["approver"], data["documentId"], data["url"]) == (
            bob.get_full_name(),
            document.pk,
            f"/documents/{document.pk}/",
        )
    # The link opens for the contact, who is not a member of the department.
    assert client_for(contact).get(f"/api/documents/{document.pk}/").status_code == 200
    # Never acknowledged here: both went on to the phones, with their data.
    reminder_push = pushed(fcm, bob_phone.token, "TaskReminder")
    escalation_push = pushed(fcm, carol_phone.token, "TaskEscalated")
    assert (reminder_push["notification_id"], reminder_push["priority"]) == (reminder["id"], "normal")
    assert escalation_push["notification_id"] == escalation["id"]
    assert json.loads(escalation_push["data"])["url"] == f"/documents/{document.pk}/"

    response = client_for(bob).post(f"/api/documents/{document.pk}/approve/", {}, format="json")
    assert response.status_code == 200, response.content

    assert resolved(bob_native, bob_signalr, new_task["id"]) == ("done", "done")
    assert resolved(bob_native, bob_signalr, reminder["id"]) == ("done", "done")
    assert resolved(carol_native, carol_signalr, escalation["id"]) == ("done", "done")
    for notification_id in (reminder["id"], escalation["id"]):
        assert Delivery.objects.get(notification_id=notification_id).status == Delivery.Status.RESOLVED
    # The beat keeps running: nothing more about this task, ever.
    rounds_later = timezone.now() + timedelta(seconds=4 * ROUND_INTERVAL)
    assert eventually(lambda: timezone.now() > rounds_later)
    assert sorted(Notification.objects.filter(document=document).values_list("event", flat=True)) == [
        "DocumentApproved",
        "NewTask",
        "TaskEscalated",
        "TaskReminder",
    ]


def test_a_task_decided_in_time_is_never_reminded(worker, devices, requester, department, approvers, contact):
    bob = approvers[0]
    bob_native, _ = devices(bob)
    document = workflow.document_create(requester=requester, department=department, title="Q4", approvers=[bob])
    workflow.document_submit(document=document, submitted_by=requester)
    task = Task.objects.get(document=document)
    workflow.step_approve(document=document, approver=bob)

    # Past both times, several rounds later: still nothing.
    later = task.created_at + ESCALATE_AFTER + timedelta(seconds=3 * ROUND_INTERVAL)
    assert eventually(lambda: timezone.now() > later, timeout=10)
    frames = bob_native.frames_until(lambda frame: frame["type"] == "resolved", timeout=10)
    assert [frame["event"] for frame in frames if frame["type"] == "notification"] == ["NewTask"]
    task.refresh_from_db()
    assert (task.reminded_at, task.escalated_at) == (None, None)
    assert not Notification.objects.filter(event__in=["TaskReminder", "TaskEscalated"]).exists()
