"""The official JavaScript client, @microsoft/signalr 10.0.11 on Node, unchanged, against a real NotifyHub.

Configured as an existing app is (the article this product replaces): the hub
URL, `accessTokenFactory`, handlers for `DocumentApproved`/`NewTask` that read
`data.documentId` and acknowledge with `invoke('AcknowledgeNotification',
data.notificationId)`.
"""

from datetime import timedelta

import pytest

from notifications import presence
from notifications.hub.session import REPLAY_PAGE_SIZE
from notifications.models import Delivery, Notification
from notifications.services import notification_publish
from tests.support.factories import UserFactory
from tests.support.hub_client import access_token
from tests.support.signalr_node import NodeSignalRClient
from tests.support.waiting import eventually
from workflow import services as workflow

pytestmark = pytest.mark.django_db(transaction=True)

HUB_PATH = "/hubs/workflow"
WORKFLOW_EVENTS = ["DocumentApproved", "NewTask", "DocumentRejected"]


@pytest.fixture
def node_client(tmp_path, redis_client):
    clients = []

    def open_client() -> NodeSignalRClient:
        client = NodeSignalRClient(tmp_path / str(len(clients)))
        clients.append(client)
        return client

    (tmp_path / "0").mkdir()
    for number in range(1, 5):
        (tmp_path / str(number)).mkdir()
    yield open_client
    for client in clients:
        client.close()


def publish(user, **kwargs):
    return notification_publish(event=kwargs.pop("event", "NewTask"), title="Hi", user_ids=[user.pk], **kwargs)


def test_receives_document_approved_and_acknowledges_it(hub_server, node_client, requester, approvers):
    document = workflow.document_create(
        requester=requester, department=requester.departments.first(), title="Laptop", approvers=approvers[:1]
    )
    workflow.document_submit(document=document, submitted_by=requester)
    client = node_client()
    started = client.start(
        hub_server.http_url(HUB_PATH), access_token(requester), targets=WORKFLOW_EVENTS, autoAck=True
    )
    assert started["kind"] == "started", started
    assert started["connectionId"]  # negotiated

    workflow.step_approve(document=document, approver=approvers[0])

    event = client.next("event")
    notification = Notification.objects.get(event="DocumentApproved", deliveries__recipient=requester)
    assert event["target"] == "DocumentApproved"
    [data] = event["args"]
    assert data["documentId"] == document.pk
    assert data["approvedBy"] == notification.data["approvedBy"]
    assert data["notificationId"] == str(notification.pk)
    assert client.next("acked", "ack_failed")["kind"] == "acked"
    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == Delivery.Status.ACKNOWLEDGED


def test_invoke_results_and_errors(hub_server, node_client):
    user = UserFactory()
    notification = publish(user)
    client = node_client()
    assert client.start(hub_server.http_url(HUB_PATH), access_token(user))["kind"] == "started"

    read = client.invoke("MarkRead", str(notification.pk))
    unknown = client.invoke("LaunchRockets", 1)
    not_found = client.invoke("AcknowledgeNotification", "00000000-0000-0000-0000-000000000000")

    assert read == {"kind": "result", "id": read["id"], "result": None}
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.READ
    assert unknown["error"] == "Unknown hub method 'LaunchRockets'"
    assert not_found["error"] == "No notification 00000000-0000-0000-0000-000000000000 for you."


def test_bad_token_fails_start_at_negotiate(hub_server, node_client):
    client = node_client()

    failed = client.start(hub_server.http_url(HUB_PATH), "not-a-token")

    assert failed["kind"] == "start_failed"
    assert "Failed to complete negotiation with the server" in failed["error"]
    assert "Unauthorized: invalid token" in failed["error"]
    assert "401" in failed["error"]


def test_skip_negotiation_connects_straight_over_websockets(hub_server, node_client):
    user = UserFactory()
    missed = publish(user)
    client = node_client()

    started = client.start(
        hub_server.http_url(HUB_PATH), access_token(user), targets=WORKFLOW_EVENTS, skipNegotiation=True
    )

    assert started == {"kind": "started", "connectionId": None, "tokenRequests": started["tokenRequests"]}
    assert client.next("event")["args"][0]["notificationId"] == str(missed.pk)


def test_a_backlog_is_replayed_and_every_notification_acknowledged(hub_server, node_client):
    """Longer than a replay page, and every handler acknowledges at once: no flood-guard close."""
    user = UserFactory()
    missed = [str(publish(user, data={"n": number}).pk) for number in range(REPLAY_PAGE_SIZE + 50)]
    client = node_client()

    assert (
        client.start(hub_server.http_url(HUB_PATH), access_token(user), targets=WORKFLOW_EVENTS, autoAck=True)["kind"]
        == "started"
    )

    received = [client.next("event")["args"][0]["notificationId"] for _ in missed]
    acked = {client.next("acked", "ack_failed").get("notificationId") for _ in missed}
    assert received == missed
    assert acked == set(missed)
    assert set(Delivery.objects.filter(recipient=user).values_list("status", flat=True)) == {
        Delivery.Status.ACKNOWLEDGED
    }


def test_expired_token_means_reconnect_with_a_fresh_one(hub_server, node_client):
    user = UserFactory()
    client = node_client()
    started = client.start(
        hub_server.http_url(HUB_PATH),
        access_token(user, lifetime=timedelta(seconds=3)),
        targets=WORKFLOW_EVENTS,
        reconnectDelays=[0, 500, 1000, 2000],
    )
    assert started["kind"] == "started"
    client.command("token", token=access_token(user))

    reconnecting = client.next("reconnecting", "closed")
    reconnected = client.next("reconnected", "closed")

    assert reconnecting == {"kind": "reconnecting", "error": None}
    assert reconnected["kind"] == "reconnected"
    assert reconnected["connectionId"] != started["connectionId"]
    assert reconnected["tokenRequests"] > started["tokenRequests"]
    notification = publish(user)
    assert client.next("event")["args"][0]["notificationId"] == str(notification.pk)


def test_server_shutdown_makes_the_client_reconnect_and_catch_up(start_server, node_client):
    user = UserFactory()
    server = start_server("js-shutdown")
    client = node_client()
    assert (
        client.start(
            server.http_url(HUB_PATH),
            access_token(user),
            targets=WORKFLOW_EVENTS,
            autoAck=True,
            reconnectDelays=[0, 500, 500, 500, 1000, 1000, 2000, 2000, 2000, 2000],
        )["kind"]
        == "started"
    )
    # start() resolves at the handshake; stop only once the server side has opened the session too.
    assert eventually(lambda: presence.is_online(user.pk))

    server.stop()
    assert client.next("reconnecting", "closed") == {"kind": "reconnecting", "error": None}
    missed = publish(user)  # nobody is online: it waits in the database
    restarted = start_server("js-shutdown-restarted", port=server.port)

    assert client.next("reconnected", "closed", timeout=30)["kind"] == "reconnected"
    assert client.next("event")["args"][0]["notificationId"] == str(missed.pk)
    assert client.next("acked", "ack_failed")["kind"] == "acked"
    assert eventually(lambda: Delivery.objects.get(notification=missed).status == Delivery.Status.ACKNOWLEDGED)
    restarted.stop()
