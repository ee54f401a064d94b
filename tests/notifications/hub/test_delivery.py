"""Notifications reach every device, once, live or replayed, and acks and reads sync (real daphne + Redis)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import layer
from notifications.hub.session import REPLAY_PAGE_SIZE
from notifications.models import Delivery
from notifications.services import delivery_acknowledge, notification_publish
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient, until_notification
from workflow import services as workflow
from workflow.models import DepartmentMembership

pytestmark = pytest.mark.django_db(transaction=True)

NOTIFICATION_FIELDS = {
    "type",
    "id",
    "event",
    "title",
    "body",
    "data",
    "document_id",
    "priority",
    "created_at",
    "expires_at",
    "actions",
    "replayed",
}


def publish(*users, departments=(), **kwargs):
    return notification_publish(
        event=kwargs.pop("event", "Ping"),
        title=kwargs.pop("title", "Hello"),
        user_ids=[user.pk for user in users],
        department_ids=[department.pk for department in departments],
        **kwargs,
    )


def notifications_until(client: NativeClient, sentinel) -> list[dict]:
    """Notification frames received up to the sentinel notification, which is left out."""
    frames = client.frames_until(until_notification(sentinel.pk))
    return [frame for frame in frames[:-1] if frame["type"] == "notification"]


def delivery_status(notification, user) -> str:
    return Delivery.objects.get(notification=notification, recipient=user).status


def test_every_device_of_the_recipient_gets_it_and_nobody_else(connect):
    user, bystander = UserFactory(), UserFactory()
    phone, laptop, other = connect(user), connect(user), connect(bystander)

    notification = publish(user, title="Approve Q3", body="Please", data={"documentId": 7}, priority="high")

    for device in (phone, laptop):
        frame = device.frames_until(until_notification(notification.pk))[-1]
        assert set(frame) == NOTIFICATION_FIELDS
        assert frame["event"] == "Ping"
        assert (frame["title"], frame["body"], frame["data"], frame["priority"]) == (
            "Approve Q3",
            "Please",
            {"documentId": 7},
            "high",
        )
        assert frame["replayed"] is False
        assert frame["actions"] == []
    assert delivery_status(notification, user) == Delivery.Status.SENT
    assert notifications_until(other, publish(bystander)) == []


def test_department_notification_reaches_members_once_and_only_members(connect):
    department = DepartmentFactory()
    direct_member, member, outsider = UserFactory(), UserFactory(), UserFactory()
    add_members(department, direct_member, member)
    clients = {user: connect(user) for user in (direct_member, member, outsider)}

    # direct_member is targeted twice: by id and through the department.
    notification = publish(direct_member, departments=[department])

    for user, client in clients.items():
        received = notifications_until(client, publish(user))
        expected = [] if user is outsider else [str(notification.pk)]
        assert [frame["id"] for frame in received] == expected
    assert notification.recipient_count == 2


def test_same_notification_through_user_and_department_groups_is_shown_once(connect):
    department = DepartmentFactory()
    user = UserFactory()
    add_members(department, user)
    client = connect(user)
    notification = publish(user)
    payload = layer.notification_payload(notification)

    layer.send_notification_now(payload=payload, user_ids=[user.pk], department_recipients={department.pk: [user.pk]})

    received = notifications_until(client, publish(user))
    assert [frame["id"] for frame in received] == [str(notification.pk)]


def test_department_member_who_is_not_a_recipient_sees_nothing(connect):
    """A connection keeps its department groups, but only the recipients named in the send may show it."""
    department = DepartmentFactory()
    leaver, stayer = UserFactory(), UserFactory()
    add_members(department, leaver, stayer)
    leaver_client, stayer_client = connect(leaver), connect(stayer)
    DepartmentMembership.objects.filter(user=leaver).delete()

    notification = publish(departments=[department])

    assert [frame["id"] for frame in notifications_until(stayer_client, publish(stayer))] == [str(notification.pk)]
    assert notifications_until(leaver_client, publish(leaver)) == []
    assert not Delivery.objects.filter(notification=notification, recipient=leaver).exists()


def test_member_who_joined_the_department_after_connecting_still_gets_it_live(connect):
    department = DepartmentFactory()
    newcomer = UserFactory()
    client = connect(newcomer)  # not in the department's group
    add_members(department, newcomer)

    notification = publish(departments=[department])

    assert [frame["id"] for frame in notifications_until(client, publish(newcomer))] == [str(notification.pk)]
    assert delivery_status(notification, newcomer) == Delivery.Status.SENT


def test_hello_tells_who_where_and_how_many_unread(connect):
    department = DepartmentFactory()
    user = UserFactory()
    add_members(department, user)
    publish(user)
    publish(user)

    hello = connect(user).hello

    assert hello["user"] == {"id": user.pk, "username": user.username}
    assert hello["departments"] == [department.pk]
    assert hello["unread_count"] == 2
    assert hello["protocol"] == 1
    assert {"server_time", "token_expires_at", "heartbeat"} <= set(hello)


def test_notifications_missed_while_offline_are_replayed_once_oldest_first(connect):
    user = UserFactory()
    connect(user).close()
    first, second = publish(user, title="first"), publish(user, title="second")
    acknowledged = publish(user)
    delivery_acknowledge(user_id=user.pk, notification_id=acknowledged.pk)
    expiring = publish(user, expires_at=timezone.now() + timedelta(seconds=30))
    expiring.expires_at = timezone.now() - timedelta(seconds=1)
    expiring.save(update_fields=["expires_at"])

    client = connect(user)

    assert [(frame["id"], frame["replayed"]) for frame in client.replayed] == [
        (str(first.pk), True),
        (str(second.pk), True),
    ]
    assert delivery_status(first, user) == Delivery.Status.SENT
    assert notifications_until(client, publish(user)) == []


def test_a_long_absence_is_replayed_across_pages_in_order(connect):
    user = UserFactory()
    missed = [str(publish(user, title=str(number)).pk) for number in range(REPLAY_PAGE_SIZE + 25)]

    client = connect(user)

    assert [frame["id"] for frame in client.replayed] == missed


def test_unacknowledged_notification_comes_back_after_reconnect_until_acknowledged(connect):
    user = UserFactory()
    notification = publish(user)

    assert [frame["id"] for frame in connect(user).replayed] == [str(notification.pk)]
    again = connect(user)
    assert [frame["id"] for frame in again.replayed] == [str(notification.pk)]

    again.send(type="ack", id=str(notification.pk))
    again.send(type="ping")
    # Frames are handled in order: the ack is written and confirmed before the ping is answered.
    assert again.frames_until(lambda frame: frame["type"] == "pong")[:-1] == [
        {"type": "acked", "ids": [str(notification.pk)]}
    ]
    assert delivery_status(notification, user) == Delivery.Status.ACKNOWLEDGED
    assert connect(user).replayed == []


def test_ack_is_idempotent_and_only_for_ones_own_notifications(connect):
    owner, intruder = UserFactory(), UserFactory()
    notification = publish(owner)
    owner_client, intruder_client = connect(owner), connect(intruder)

    owner_client.send(type="ack", id=str(notification.pk))
    owner_client.send(type="ack", id=str(notification.pk))
    owner_client.send(type="ping")
    confirmations = owner_client.frames_until(lambda frame: frame["type"] == "pong")[:-1]
    assert [notification_id for frame in confirmations for notification_id in frame["ids"]] == [
        str(notification.pk)
    ] * 2
    first_ack = Delivery.objects.get(notification=notification).acknowledged_at

    refused = intruder_client.request("error", type="ack", id=str(notification.pk))
    unknown = intruder_client.request("error", type="ack", id="not-a-notification-id")

    assert refused["code"] == unknown["code"] == "not_found"
    assert refused["request"] == "ack"
    delivery = Delivery.objects.get(notification=notification)
    assert (delivery.status, delivery.acknowledged_at) == (Delivery.Status.ACKNOWLEDGED, first_ack)


def test_read_on_one_device_syncs_the_others(connect):
    user = UserFactory()
    first, second = publish(user), publish(user)
    reader, other_device = connect(user), connect(user)

    reader.send(type="read", id=str(first.pk))

    assert other_device.frames_until(lambda frame: frame["type"] == "unread_count") == [
        {"type": "read", "id": str(first.pk)},
        {"type": "unread_count", "count": 1},
    ]
    assert delivery_status(first, user) == Delivery.Status.READ
    assert delivery_status(second, user) != Delivery.Status.READ
    # The reader is answered with the count, and is not told as a sync what it just did.
    sentinel = publish(user)
    assert reader.frames_until(until_notification(sentinel.pk))[:-1] == [
        {"type": "unread_count", "count": 1, "request": "read"}
    ]


def test_read_all_syncs_every_id_and_a_zero_count(connect):
    user = UserFactory()
    first, second = publish(user), publish(user)
    reader, other_device = connect(user), connect(user)

    reader.send(type="read_all")

    frames = other_device.frames_until(lambda frame: frame["type"] == "unread_count")
    assert sorted(frame["id"] for frame in frames[:-1]) == sorted([str(first.pk), str(second.pk)])
    assert frames[-1] == {"type": "unread_count", "count": 0}
    assert reader.frames_until(lambda frame: frame["type"] == "unread_count") == [
        {"type": "unread_count", "count": 0, "request": "read_all"}
    ]


def test_read_of_a_read_notification_answers_the_count_again(connect):
    user = UserFactory()
    notification = publish(user)
    reader = connect(user)
    reader.send(type="read", id=str(notification.pk))
    reader.frames_until(lambda frame: frame["type"] == "unread_count")
    unread_later = publish(user)

    reader.send(type="read", id=str(notification.pk))

    frames = reader.frames_until(lambda frame: frame["type"] == "unread_count")
    assert frames[-1] == {"type": "unread_count", "count": 1, "request": "read"}
    assert delivery_status(unread_later, user) != Delivery.Status.READ


def test_read_of_someone_elses_notification_is_not_found(connect):
    owner, intruder = UserFactory(), UserFactory()
    notification = publish(owner)

    reply = connect(intruder).request("error", type="read", id=str(notification.pk))

    assert reply["code"] == "not_found"
    assert delivery_status(notification, owner) == Delivery.Status.PENDING


class TestWorkflowEventsReachTheSocket:
    """From the workflow service to the client's socket, one per event type."""

    @pytest.fixture
    def document(self, requester, department, approvers):
        return workflow.document_create(requester=requester, department=department, title="Q3", approvers=approvers)

    def test_submit_sends_new_task_to_the_first_approver(self, connect, document, requester, approvers):
        approver = connect(approvers[0])

        workflow.document_submit(document=document, submitted_by=requester)

        frame = approver.frames_until(lambda frame: frame["type"] == "notification")[-1]
        assert frame["event"] == "NewTask"
        assert frame["document_id"] == document.pk
        assert frame["data"]["documentId"] == document.pk
        assert frame["data"]["step"] == 1

    def test_approval_sends_document_approved_to_the_requester(self, connect, document, requester, approvers):
        workflow.document_submit(document=document, submitted_by=requester)
        client = connect(requester)

        workflow.step_approve(document=document, approver=approvers[0], comment="ok")

        frame = client.frames_until(lambda frame: frame["type"] == "notification")[-1]
        assert frame["event"] == "DocumentApproved"
        assert (frame["data"]["step"], frame["data"]["comment"]) == (1, "ok")

    def test_rejection_sends_document_rejected_to_the_requester(self, connect, document, requester, approvers):
        workflow.document_submit(document=document, submitted_by=requester)
        client = connect(requester)

        workflow.document_reject(document=document, approver=approvers[0], comment="too expensive")

        frame = client.frames_until(lambda frame: frame["type"] == "notification")[-1]
        assert frame["event"] == "DocumentRejected"
        assert frame["data"]["comment"] == "too expensive"
