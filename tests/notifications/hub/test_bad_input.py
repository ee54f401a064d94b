"""Bad client input gets an error frame and the connection stays up; too big closes 1009, flooding 1008."""

import json

import pytest
from django.conf import settings

from notifications.hub.closes import MAX_MESSAGE_BYTES
from notifications.models import Delivery
from notifications.services import notification_publish
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(hub_server, redis_client):
    with NativeClient.connect(hub_server, token=access_token(UserFactory())) as client:
        client.start()
        yield client


def padded_ping(size: int, pad_character: str = "x") -> str:
    """A ping frame of exactly `size` UTF-8 bytes."""
    frame = json.dumps({"type": "ping", "pad": ""})
    padding = size - len(frame.encode())
    repeats, remainder = divmod(padding, len(pad_character.encode()))
    text = json.dumps({"type": "ping", "pad": pad_character * repeats + "x" * remainder}, ensure_ascii=False)
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not json", "invalid_json"),
        ('{"type": "ping"', "invalid_json"),
        ("[" * 30_000 + "]" * 30_000, "invalid_json"),  # nested too deep to parse
        ('["ping"]', "invalid_message"),
        ('"ping"', "invalid_message"),
        ("{}", "invalid_message"),
        ('{"type": 42}', "invalid_message"),
        ('{"type": "launch_missiles"}', "unknown_type"),
        ('{"type": "ack"}', "invalid"),
        ('{"type": "read", "id": null}', "invalid"),
        ('{"type": "subscribe"}', "invalid"),
        ('{"type": "typing"}', "invalid"),
        ('{"type": "ack", "id": "not-a-uuid"}', "not_found"),
        ('{"type": "ack", "id": {"$ne": null}}', "not_found"),
    ],
)
def test_bad_frames_get_an_error_and_the_connection_stays_up(client, frame, code):
    client.send_raw(frame)

    error = client.recv()
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    assert client.request("pong", type="ping")["type"] == "pong"


def test_missing_fields_are_named(client):
    error = client.request("error", type="subscribe")
    assert error == {
        "type": "error",
        "code": "invalid",
        "message": "subscribe needs 'document_id'.",
        "request": "subscribe",
    }


def test_unknown_type_lists_the_known_ones(client):
    error = client.request("error", type="launch_missiles")
    assert "ack" in error["message"] and "subscribe" in error["message"]


def test_binary_frames_are_refused_with_an_error(client):
    client.send_raw(b'{"type": "ping"}')

    assert client.recv()["code"] == "unsupported"
    assert client.request("pong", type="ping")["type"] == "pong"


@pytest.mark.parametrize("pad_character", ["x", "€"])
def test_a_frame_of_exactly_64_kib_is_handled(client, pad_character):
    client.send_raw(padded_ping(MAX_MESSAGE_BYTES, pad_character))

    assert client.recv()["type"] == "pong"


@pytest.mark.parametrize("pad_character", ["x", "€"])
def test_a_frame_over_64_kib_closes_with_1009(client, pad_character):
    client.send_raw(padded_ping(MAX_MESSAGE_BYTES + 3, pad_character))

    closed = client.closed()
    assert (closed.code, closed.reason) == (1009, "message larger than 65536 bytes")
    assert [frame["code"] for frame in closed.frames] == ["message_too_big"]


def test_flooding_closes_with_1008_and_other_users_are_unaffected(hub_server, redis_client):
    neighbour = NativeClient.connect(hub_server, token=access_token(UserFactory()))
    neighbour.start()
    flooder = NativeClient.connect(hub_server, token=access_token(UserFactory()))
    flooder.start()

    for _ in range(settings.WS_RATE_BURST * 5):
        flooder.send(type="ping")
    closed = flooder.closed()
    frames = closed.frames

    assert (closed.code, closed.reason) == (1008, "too many messages")
    assert frames[-1] == {"type": "error", "code": "rate_limited", "message": "too many messages"}
    assert {frame["type"] for frame in frames[:-1]} == {"pong"}
    assert settings.WS_RATE_BURST <= len(frames) - 1 < settings.WS_RATE_BURST * 5
    assert neighbour.request("pong", type="ping")["type"] == "pong"
    neighbour.close()


def test_acknowledging_a_long_replay_at_once_is_not_flooding(connect):
    user = UserFactory()
    missed = [
        notification_publish(event="NewTask", title="Approve", user_ids=[user.pk])
        for _ in range(settings.WS_RATE_BURST * 2)
    ]
    client = connect(user)

    for notification in missed:
        client.send(type="ack", id=str(notification.pk))

    client.send(type="ping")
    *answers, pong = client.frames_until(lambda frame: frame["type"] in ("pong", "error"))
    assert pong["type"] == "pong"
    assert [notification_id for frame in answers for notification_id in frame["ids"]] == [
        str(notification.pk) for notification in missed
    ]
    assert set(Delivery.objects.filter(recipient=user).values_list("status", flat=True)) == {
        Delivery.Status.ACKNOWLEDGED
    }
