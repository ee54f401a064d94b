"""Two daphne processes behind one Redis behave as one hub."""

import pytest

from notifications import presence
from notifications.services import notification_publish
from tests.support.api import make_publisher
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import access_token, until_notification
from tests.support.servers import post_json
from tests.support.waiting import eventually
from workflow import services as workflow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def second_server(start_server):
    return start_server("hub-b")


def test_presence_counts_connections_on_both_processes(hub_server, second_server, connect):
    user = UserFactory()
    on_a = connect(user)
    connect(user, second_server)

    assert presence.live_connection_counts([user.pk]) == {user.pk: 2}

    on_a.close()
    assert eventually(lambda: presence.live_connection_counts([user.pk]) == {user.pk: 1})


def test_published_through_process_as_api_it_reaches_a_client_on_process_b(hub_server, second_server, connect):
    department = DepartmentFactory()
    member = UserFactory()
    add_members(department, member)
    publisher = make_publisher()
    on_b = connect(member, second_server)

    response = post_json(
        hub_server,
        "/api/notifications/",
        {"event": "InvoiceOverdue", "title": "Invoice 42", "recipients": {"departments": [department.code]}},
        token=access_token(publisher),
    )

    assert response.status == 201, response.body
    assert on_b.frames_until(until_notification(response.body["id"]))[-1]["event"] == "InvoiceOverdue"


def test_a_notification_reaches_devices_on_both_processes(hub_server, second_server, connect):
    user = UserFactory()
    devices = [connect(user), connect(user, second_server)]

    notification = notification_publish(event="Ping", title="t", user_ids=[user.pk])

    for device in devices:
        assert device.frames_until(until_notification(notification.pk))[-1]["replayed"] is False


def test_a_read_on_process_a_syncs_a_device_on_process_b(hub_server, second_server, connect):
    user = UserFactory()
    notification = notification_publish(event="Ping", title="t", user_ids=[user.pk])
    on_a, on_b = connect(user), connect(user, second_server)

    on_a.send(type="read", id=str(notification.pk))  # process A publishes the read sync

    assert on_b.frames_until(lambda frame: frame["type"] == "unread_count") == [
        {"type": "read", "id": str(notification.pk)},
        {"type": "unread_count", "count": 0},
    ]


def test_document_room_spans_both_processes(hub_server, second_server, connect, requester, department, approvers):
    document = workflow.document_create(requester=requester, department=department, title="Q3", approvers=approvers)
    on_a, on_b = connect(requester), connect(approvers[0], second_server)
    on_a.request("subscribed", type="subscribe", document_id=document.pk)

    joined = on_b.request("subscribed", type="subscribe", document_id=document.pk)
    on_b.send(type="typing", document_id=document.pk)

    assert {member["id"] for member in joined["members"]} == {requester.pk, approvers[0].pk}
    assert [frame["type"] for frame in on_a.frames_until(lambda frame: frame["type"] == "typing")] == [
        "presence",
        "typing",
    ]
