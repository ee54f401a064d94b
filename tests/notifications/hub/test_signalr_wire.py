"""The SignalR endpoint on the wire, with a raw WebSocket client (the skip-negotiation path) against real daphne."""

import json
import uuid
from datetime import timedelta

import pytest

from notifications.hub.signalr.protocol import RECORD_SEPARATOR
from notifications.models import Delivery, Notification
from notifications.services import notification_publish
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient, access_token, until_notification
from tests.support.signalr_client import SignalRSocket, invocation, is_completion, targeting
from workflow import services as workflow

pytestmark = pytest.mark.django_db(transaction=True)


def publish(user, **kwargs):
    return notification_publish(
        event=kwargs.pop("event", "Ping"), title=kwargs.pop("title", "Hello"), user_ids=[user.pk], **kwargs
    )


@pytest.fixture
def signalr(hub_server, redis_client):
    """signalr(user, **connect_options) -> a SignalRSocket past the handshake and the replay, closed afterwards."""
    clients = []

    def open_client(user, **options) -> SignalRSocket:
        client = SignalRSocket.started(hub_server, token=access_token(user), **options)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


# --- Connecting -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {},  # skipNegotiation: no id at all
        {"id": "stale-or-unknown-token"},  # pysignalr reconnects with the id it negotiated long ago
        {"id": "x", "connectionId": ""},  # signalrcore's skip_negotiation adds a bogus connectionId
    ],
    ids=["no-id", "unknown-id", "signalrcore-connectionId"],
)
def test_any_connection_id_or_none_is_a_new_connection(signalr, query):
    user = UserFactory()
    notification = publish(user, title="missed")

    client = signalr(user, query=query)

    assert [message["arguments"][0]["notificationId"] for message in client.replayed] == [str(notification.pk)]


def test_token_in_the_access_token_query_parameter_as_browsers_send_it(signalr):
    user = UserFactory()
    notification = publish(user)

    client = signalr(user, via="query", query={"id": "abc"})

    assert client.replayed[0]["arguments"][0]["notificationId"] == str(notification.pk)


def test_hub_url_with_a_trailing_slash_works_too(hub_server, redis_client):
    with SignalRSocket.connect(hub_server, path="/hubs/workflow/", token=access_token(UserFactory())) as client:
        assert client.handshake() == {}


def test_document_approved_arrives_as_an_invocation_shaped_like_the_aspnet_hub(signalr, requester, approvers):
    document = workflow.document_create(
        requester=requester, department=requester.departments.first(), title="Q3 travel", approvers=approvers[:1]
    )
    workflow.document_submit(document=document, submitted_by=requester)
    client = signalr(requester)

    workflow.step_approve(document=document, approver=approvers[0], comment="fine")

    message = client.next_message(targeting("DocumentApproved"))
    notification = Notification.objects.get(event="DocumentApproved", deliveries__recipient=requester)
    assert set(message) == {"type", "target", "arguments"}  # no invocationId key, not even null
    [argument] = message["arguments"]
    assert argument["notificationId"] == str(notification.pk)
    assert argument["documentId"] == document.pk
    assert argument["approvedBy"] == notification.data["approvedBy"]
    assert argument["step"] == 1
    assert argument["timestamp"] == notification.data["timestamp"]
    assert (argument["title"], argument["body"]) == (notification.title, notification.body)
    assert {key: argument[key] for key in notification.data} == notification.data


def test_frames_are_text_and_every_record_ends_with_the_separator(signalr):
    user = UserFactory()
    publish(user)
    client = signalr(user)

    assert client.frames
    assert all(frame.endswith(RECORD_SEPARATOR) for frame in client.frames)


# --- Hub methods ------------------------------------------------------------------------------------------------


def test_acknowledge_notification_acknowledges_the_delivery_and_completes_without_result(signalr):
    user = UserFactory()
    notification = publish(user)
    client = signalr(user)

    completion = client.invoke("AcknowledgeNotification", str(notification.pk))

    assert completion == {"type": 3, "invocationId": completion["invocationId"]}
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.ACKNOWLEDGED
    assert signalr(user).replayed == []


def test_hub_methods_are_matched_ignoring_case(signalr):
    user = UserFactory()
    notification = publish(user)
    client = signalr(user)

    completion = client.invoke("acknowledgeNOTIFICATION", str(notification.pk))

    assert "error" not in completion
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.ACKNOWLEDGED


def test_unknown_hub_method_gets_the_standard_error(signalr):
    client = signalr(UserFactory())

    completion = client.invoke("LaunchRockets", 1)

    assert completion["error"] == "Unknown hub method 'LaunchRockets'"


def test_failing_method_completes_with_a_clear_error(signalr):
    owner, intruder = UserFactory(), UserFactory()
    notification = publish(owner)
    client = signalr(intruder)

    not_yours = client.invoke("AcknowledgeNotification", str(notification.pk))
    wrong_count = client.invoke("MarkRead")
    not_a_number = client.invoke("SubscribeDocument", "seven")

    assert not_yours["error"] == f"No notification {notification.pk} for you."
    assert wrong_count["error"] == "MarkRead takes 1 argument (notificationId), not 0."
    assert "positive integer" in not_a_number["error"]
    assert Delivery.objects.get(notification=notification).acknowledged_at is None


def test_invocation_without_id_gets_no_reply_even_when_it_fails(signalr):
    user = UserFactory()
    notification = publish(user)
    client = signalr(user)

    client.send(
        invocation("AcknowledgeNotification", str(notification.pk)),
        invocation("AcknowledgeNotification", str(uuid.uuid4())),
        invocation("NoSuchMethod"),
    )

    assert client.sync() == []
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.ACKNOWLEDGED


def test_streaming_is_refused_and_cancel_invocation_ignored(signalr):
    client = signalr(UserFactory())

    client.send(
        {"type": 4, "invocationId": "s1", "target": "Counter", "arguments": [3]},
        {"type": 5, "invocationId": "s1"},
        {"type": 6},
    )

    assert client.completion("s1")["error"] == "Streaming hub methods are not supported."
    assert client.sync() == []


def test_mark_read_syncs_the_users_native_connections(signalr, hub_server):
    user = UserFactory()
    notification = publish(user)
    client = signalr(user)
    with NativeClient.connect(hub_server, token=access_token(user)) as native:
        native.start()

        assert "error" not in client.invoke("MarkRead", str(notification.pk))

        read = native.frames_until(lambda frame: frame["type"] == "unread_count")
    assert read == [{"type": "read", "id": str(notification.pk)}, {"type": "unread_count", "count": 0}]
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.READ


def test_native_read_reaches_signalr_as_notifications_read(signalr, hub_server):
    user = UserFactory()
    first, second = publish(user), publish(user)
    client = signalr(user)
    with NativeClient.connect(hub_server, token=access_token(user)) as native:
        native.start()
        native.send(type="read", id=str(first.pk))

        message = client.next_message(targeting("NotificationsRead"))

    assert message["arguments"] == [{"notificationIds": [str(first.pk)], "unreadCount": 1}]
    assert second  # still unread


def test_a_notification_reaches_signalr_and_native_connections_alike(signalr, hub_server):
    user = UserFactory()
    client = signalr(user)
    with NativeClient.connect(hub_server, token=access_token(user)) as native:
        native.start()

        notification = publish(user, event="BudgetExceeded", data={"amount": 12})

        assert native.frames_until(until_notification(notification.pk))[-1]["data"] == {"amount": 12}
    argument = client.next_message(targeting("BudgetExceeded"))["arguments"][0]
    assert argument["amount"] == 12


def test_subscribe_document_returns_the_room_and_typing_reaches_the_others(signalr, requester, approvers):
    document = workflow.document_create(
        requester=requester, department=requester.departments.first(), title="Offsite", approvers=approvers[:1]
    )
    watcher, typist = signalr(requester), signalr(approvers[0])

    joined = watcher.invoke("SubscribeDocument", document.pk)
    typist_joined = typist.invoke("SubscribeDocument", document.pk)
    typed = typist.invoke("Typing", document.pk)

    assert joined["result"] == {
        "documentId": document.pk,
        "members": [{"id": requester.pk, "username": requester.username}],
    }
    assert {member["id"] for member in typist_joined["result"]["members"]} == {requester.pk, approvers[0].pk}
    assert "error" not in typed
    presence = watcher.next_message(targeting("DocumentPresence"))["arguments"][0]
    assert presence == {
        "documentId": document.pk,
        "user": {"id": approvers[0].pk, "username": approvers[0].username},
        "state": "join",
    }
    typing = watcher.next_message(targeting("DocumentTyping"))["arguments"][0]
    assert typing == {"documentId": document.pk, "user": {"id": approvers[0].pk, "username": approvers[0].username}}


def test_department_notification_reaches_a_signalr_member(signalr):
    department = DepartmentFactory()
    member = UserFactory()
    add_members(department, member)
    client = signalr(member)

    notification = notification_publish(event="Townhall", title="Friday", department_ids=[department.pk])

    assert client.next_message(targeting("Townhall", notification.pk))["arguments"][0]["title"] == "Friday"


# --- Framing ----------------------------------------------------------------------------------------------------


def test_several_records_in_one_frame_are_all_handled_in_order(signalr):
    user = UserFactory()
    first, second = publish(user), publish(user)
    client = signalr(user)

    client.send(
        invocation("AcknowledgeNotification", str(first.pk), invocation_id="a"),
        invocation("AcknowledgeNotification", str(second.pk), invocation_id="b"),
    )

    completions = client.messages_until(lambda message: is_completion(message, "b"))
    assert [message.get("invocationId") for message in completions if message["type"] == 3] == ["a", "b"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.ACKNOWLEDGED}


def test_a_record_split_across_frames_is_reassembled(hub_server, redis_client):
    user = UserFactory()
    notification = publish(user)
    with SignalRSocket.connect(hub_server, token=access_token(user)) as client:
        handshake = json.dumps({"protocol": "json", "version": 1}) + RECORD_SEPARATOR
        client.send_raw(handshake[:7])
        client.send_raw(handshake[7:])
        assert client.next_record() == {}
        call = json.dumps(invocation("AcknowledgeNotification", str(notification.pk), invocation_id="7"))
        client.send_raw(call[:20])
        client.send_raw(call[20:] + RECORD_SEPARATOR + json.dumps({"type": 6})[:4])

        assert client.completion("7") == {"type": 3, "invocationId": "7"}
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.ACKNOWLEDGED


def test_handshake_and_first_call_in_one_frame(hub_server, redis_client):
    user = UserFactory()
    with SignalRSocket.connect(hub_server, token=access_token(user)) as client:
        client.send({"protocol": "json", "version": 1}, invocation("Nope", invocation_id="1"))

        assert client.next_record() == {}
        assert client.completion("1")["error"] == "Unknown hub method 'Nope'"


# --- Handshake --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2])
def test_json_handshake_versions_0_to_2_are_accepted(hub_server, redis_client, version):
    user = UserFactory()
    notification = publish(user)
    with SignalRSocket.connect(hub_server, token=access_token(user)) as client:
        assert client.handshake(version=version) == {}
        assert client.next_message(targeting("Ping", notification.pk))


@pytest.mark.parametrize(
    ("request_record", "error"),
    [
        ({"protocol": "messagepack", "version": 1}, "The protocol 'messagepack' is not supported."),
        ({"protocol": "json", "version": 3}, "The server does not support version 3 of the 'json' protocol."),
        ({"protocol": "json"}, 'The handshake request must be {"protocol": "json", "version": 1}.'),
        ([1, 2], "The handshake request must be a JSON object."),
    ],
    ids=["messagepack", "version-3", "no-version", "not-an-object"],
)
def test_unsupported_handshakes_get_the_standard_error_then_close(hub_server, request_record, error):
    with SignalRSocket.connect(hub_server, token=access_token(UserFactory())) as client:
        client.send_raw(json.dumps(request_record) + RECORD_SEPARATOR)

        closed = client.closed()

    assert closed.frames == [{"error": error}]
    assert closed.code == 1000


def test_messagepack_handshake_in_a_binary_frame_is_refused_the_same_way(hub_server):
    """.NET clients send everything in binary frames once told the transfer format is Binary."""
    with SignalRSocket.connect(hub_server, token=access_token(UserFactory())) as client:
        client.send_raw((json.dumps({"protocol": "messagepack", "version": 1}) + RECORD_SEPARATOR).encode())

        assert client.closed().frames == [{"error": "The protocol 'messagepack' is not supported."}]


# --- Refusals and closes ----------------------------------------------------------------------------------------


def test_bad_token_on_the_socket_becomes_a_close_message_with_the_reason(hub_server):
    with SignalRSocket.connect(hub_server, token="not-a-token") as client:
        assert client.handshake() == {}

        closed = client.closed()

    assert closed.frames == [{"type": 7, "error": "Unauthorized: invalid token"}]
    assert (closed.code, closed.reason) == (4401, "invalid token")


def test_a_token_expired_before_connecting_is_refused_for_good(hub_server):
    """Only a token that expires *during* a connection means "reconnect" (with a fresh one)."""
    token = access_token(UserFactory(), lifetime=timedelta(seconds=-1))
    with SignalRSocket.connect(hub_server, token=token) as client:
        assert client.handshake() == {}

        assert client.closed().frames == [{"type": 7, "error": "Unauthorized: token expired"}]


def test_a_token_expiring_during_the_connection_means_reconnect(hub_server, redis_client):
    token = access_token(UserFactory(), lifetime=timedelta(seconds=2))
    with SignalRSocket.connect(hub_server, token=token) as client:
        assert client.handshake() == {}

        closed = client.closed()

    assert closed.frames[-1] == {"type": 7, "allowReconnect": True}
    assert (closed.code, closed.reason) == (4401, "token expired")


def test_missing_token_is_refused_the_same_way(hub_server):
    with SignalRSocket.connect(hub_server) as client:
        assert client.handshake() == {}

        assert client.closed().frames == [{"type": 7, "error": "Unauthorized: missing token"}]


def test_close_message_from_the_client_ends_the_connection_normally(signalr):
    client = signalr(UserFactory())

    client.send({"type": 7})

    closed = client.closed()
    assert (closed.code, closed.frames) == (1000, [])


def test_malformed_message_is_a_protocol_error(signalr):
    client = signalr(UserFactory())

    client.send_raw("{not json" + RECORD_SEPARATOR)

    closed = client.closed()
    assert closed.frames == [{"type": 7, "error": "The message is not valid JSON."}]
    assert closed.code == 1002


def test_oversized_record_across_frames_closes_with_1009(signalr):
    client = signalr(UserFactory())

    for _ in range(3):
        client.send_raw('{"type":1,"target":"Typing","arguments":["' + "x" * 30_000)

    closed = client.closed()
    assert closed.code == 1009
    assert closed.frames == [{"type": 7, "error": "message larger than 65536 bytes"}]


def test_both_servers_serve_the_same_endpoint(each_server, redis_client):
    user = UserFactory()
    notification = publish(user)
    token = access_token(user)
    negotiated = each_server.request(
        "POST", "/hubs/workflow/negotiate?negotiateVersion=1", headers={"Authorization": f"Bearer {token}"}
    )
    assert negotiated.status == 200
    connection_token = json.loads(negotiated.data)["connectionToken"]

    with SignalRSocket.started(each_server, token=token, query={"id": connection_token}) as client:
        assert client.replayed[0]["arguments"][0]["notificationId"] == str(notification.pk)
        assert client.invoke("AcknowledgeNotification", str(notification.pk))["type"] == 3
    assert Delivery.objects.get(notification=notification).status == Delivery.Status.ACKNOWLEDGED


# --- Flooding -------------------------------------------------------------------------------------------------


def mark_all_read_records(count: int) -> list[dict]:
    return [invocation("MarkAllRead", invocation_id=f"flood-{index}") for index in range(count)]


def test_every_record_counts_against_the_flood_limit_as_a_native_frame_does(signalr, settings):
    """A few frames of many records each: the budget is spent by the records, not by the frames."""
    client = signalr(UserFactory())
    per_frame = 30
    for _ in range(3):  # 90 records in 3 frames, over the burst of 40
        client.send(*mark_all_read_records(per_frame))

    closed = client.closed()

    assert closed.code == 1008
    completed = [message for message in closed.frames if message.get("type") == 3]
    # About the burst ran (the handshake and the start's barrier took their share, the bucket refills a little
    # meanwhile); then the close, not the other 50.
    assert settings.WS_RATE_BURST - 5 <= len(completed) <= settings.WS_RATE_BURST + 5
    assert closed.frames[-1] == {"type": 7, "error": "too many messages"}


def test_a_frame_of_too_many_records_closes_the_connection_before_any_runs(signalr):
    client = signalr(UserFactory())
    client.send(*mark_all_read_records(600))

    closed = client.closed()

    assert closed.code == 1008
    assert [message for message in closed.frames if message.get("type") == 3] == []
