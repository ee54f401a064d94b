"""pysignalr 1.3.3 (PyPI), unchanged, against a real NotifyHub: negotiate version 0, token in the headers."""

import pytest
from django.conf import settings
from pysignalr.exceptions import AuthorizationError

from notifications.models import Delivery, Notification
from notifications.services import notification_publish
from tests.support.factories import UserFactory
from tests.support.hub_client import access_token
from tests.support.pysignalr_client import PySignalR
from workflow import services as workflow

pytestmark = pytest.mark.django_db(transaction=True)

HUB_PATH = "/hubs/workflow"


@pytest.fixture
def pysignalr(hub_server, redis_client):
    """pysignalr(user, server=hub_server) -> a connected PySignalR, closed after the test."""
    clients = []

    def connect(user, server=hub_server) -> PySignalR:
        client = PySignalR(server.http_url(HUB_PATH), access_token(user))
        clients.append(client)
        client.wait_open()
        return client

    yield connect
    for client in clients:
        client.close()


def publish(user):
    return notification_publish(event="NewTask", title="Approve", user_ids=[user.pk], data={"taskId": 1})


def test_document_approved_arrives_and_acknowledge_notification_acknowledges_it(pysignalr, requester, approvers):
    document = workflow.document_create(
        requester=requester, department=requester.departments.first(), title="Q4 plan", approvers=approvers[:1]
    )
    workflow.document_submit(document=document, submitted_by=requester)
    client = pysignalr(requester)

    workflow.step_approve(document=document, approver=approvers[0])

    target, arguments = client.next_event()
    notification = Notification.objects.get(event="DocumentApproved", deliveries__recipient=requester)
    assert target == "DocumentApproved"
    assert arguments[0]["documentId"] == document.pk
    assert arguments[0]["notificationId"] == str(notification.pk)
    completion = client.invoke("AcknowledgeNotification", arguments[0]["notificationId"])
    assert (completion.error, completion.result) == (None, None)
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.ACKNOWLEDGED


def test_unknown_method_gets_the_standard_error(pysignalr):
    client = pysignalr(UserFactory())

    completion = client.invoke("SendToAll", "hello")

    assert completion.error == "Unknown hub method 'SendToAll'"


def test_subscribe_document_returns_the_room(pysignalr, requester, approvers):
    document = workflow.document_create(
        requester=requester, department=requester.departments.first(), title="Q4 plan", approvers=approvers[:1]
    )
    client = pysignalr(requester)

    completion = client.invoke("SubscribeDocument", document.pk)

    assert completion.result == {
        "documentId": document.pk,
        "members": [{"id": requester.pk, "username": requester.username}],
    }


def test_acknowledging_a_backlog_one_frame_each_is_not_flooding(pysignalr):
    """pysignalr sends every call in its own frame: each notification sent allows its ack beyond the rate limit."""
    user = UserFactory()
    missed = [publish(user) for _ in range(settings.WS_RATE_BURST * 2)]
    client = pysignalr(user)

    for _ in missed:
        client.send("AcknowledgeNotification", client.next_event()[1][0]["notificationId"])

    assert client.invoke("Barrier").error == "Unknown hub method 'Barrier'"  # still connected, calls in order
    assert set(Delivery.objects.filter(recipient=user).values_list("status", flat=True)) == {
        Delivery.Status.ACKNOWLEDGED
    }


def test_bad_token_is_refused_at_negotiate(hub_server):
    with PySignalR(hub_server.http_url(HUB_PATH), "not-a-token") as client, pytest.raises(AuthorizationError):
        client.result()


def test_unacknowledged_notification_is_replayed_on_the_next_connection(pysignalr):
    user = UserFactory()
    first = pysignalr(user)
    notification = publish(user)
    assert first.next_event()[1][0]["notificationId"] == str(notification.pk)
    first.close()  # without acknowledging

    again = pysignalr(user)

    assert again.next_event()[1][0]["notificationId"] == str(notification.pk)


def test_reconnect_after_a_server_restart_gets_the_backlog(start_server, redis_client):
    """pysignalr reconnects to the same URL with its old `id` and no negotiate: that must be a new connection."""
    user = UserFactory()
    server = start_server("pysignalr-restart")
    with PySignalR(server.http_url(HUB_PATH), access_token(user)) as client:
        client.wait_open()
        unacknowledged = publish(user)
        assert client.next_event()[1][0]["notificationId"] == str(unacknowledged.pk)

        server.stop()
        client.wait_closed()
        missed = publish(user)
        restarted = start_server("pysignalr-restarted", port=server.port)
        client.wait_open(timeout=30)

        replayed = [client.next_event()[1][0]["notificationId"] for _ in range(2)]
        restarted.stop()
    assert replayed == [str(unacknowledged.pk), str(missed.pk)]
