"""The SignalR JSON hub protocol module on its own: framing, handshake, message shapes, how events render."""

import json
import re
from datetime import UTC, datetime

import pytest

from notifications.hub.client_messages import (
    ActionPerformed,
    Hello,
    NotificationMessage,
    ReplayComplete,
    RoomJoined,
    RoomLeft,
    UserRef,
)
from notifications.hub.signalr import protocol
from notifications.hub.signalr.consumer import HUB_METHODS

RS = protocol.RECORD_SEPARATOR


def notification(**overrides) -> dict:
    return {
        "id": "6f1c2f0e-8d4b-4a57-9e0c-2f7a3c1d9b10",
        "event": "DocumentApproved",
        "title": "Approved",
        "body": "Bob approved it",
        "data": {"documentId": 7, "approvedBy": "Bob", "step": 1, "timestamp": "2026-11-27T08:55:00+00:00"},
        "document_id": 7,
        "priority": "normal",
        "created_at": "2026-11-27T08:55:01.123456+00:00",
        "expires_at": None,
        "actions": [],
        **overrides,
    }


# --- Framing ----------------------------------------------------------------------------------------------------


def test_reader_returns_complete_records_and_keeps_the_tail():
    reader = protocol.RecordReader(max_pending_chars=100)

    assert reader.feed('{"a":1}' + RS + '{"b"') == ['{"a":1}']
    assert reader.feed(":2}" + RS + RS + '{"c":3}' + RS) == ['{"b":2}', '{"c":3}']
    assert reader.feed("") == []


def test_reader_refuses_an_endless_record():
    reader = protocol.RecordReader(max_pending_chars=10)
    reader.feed("x" * 10)

    with pytest.raises(protocol.RecordTooLarge):
        reader.feed("y")


def test_encode_is_one_compact_record():
    assert protocol.encode({"type": protocol.MessageType.PING}) == '{"type":6}' + RS


# --- Handshake --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2])
def test_json_versions_0_to_2_are_accepted(version):
    assert protocol.parse_handshake(json.dumps({"protocol": "json", "version": version})) == version


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ('{"protocol":"messagepack","version":1}', "The protocol 'messagepack' is not supported."),
        ('{"protocol":"json","version":-1}', "The server does not support version -1 of the 'json' protocol."),
        ('{"protocol":"json","version":true}', 'The handshake request must be {"protocol": "json", "version": 1}.'),
        ("{", "The handshake request is not valid JSON."),
    ],
)
def test_other_handshakes_are_refused_with_the_reason(record, error):
    with pytest.raises(protocol.HandshakeRefused, match=f"^{re.escape(error)}$"):
        protocol.parse_handshake(record)


# --- Client messages --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"type": 1, "arguments": []}, 'An invocation needs a non-empty string "target".'),
        ({"type": 1, "target": "X", "invocationId": 5}, '"invocationId" must be a non-empty string.'),
        ({"type": 1, "target": "X", "arguments": {"a": 1}}, '"arguments" must be an array.'),
    ],
)
def test_malformed_invocations_are_protocol_violations(message, error):
    with pytest.raises(protocol.ProtocolViolation, match=f"^{re.escape(error)}$"):
        protocol.parse_invocation(message)


def test_an_invocation_without_arguments_has_none():
    parsed = protocol.parse_invocation({"type": 1, "target": "MarkAllRead", "headers": {"Authorization": "x"}})

    assert (parsed.target, parsed.arguments, parsed.invocation_id) == ("MarkAllRead", [], None)


@pytest.mark.parametrize("record", ['{"type":"1"}', "[]", '{"type":true}', "nope"])
def test_messages_need_an_integer_type(record):
    with pytest.raises(protocol.ProtocolViolation):
        protocol.parse_message(record)


# --- Server messages --------------------------------------------------------------------------------------------


def test_server_invocations_never_carry_an_invocation_id():
    assert protocol.invocation("NewTask", {"a": 1}) == {"type": 1, "target": "NewTask", "arguments": [{"a": 1}]}


def test_completion_carries_result_or_error_or_neither():
    assert protocol.completion("1") == {"type": 3, "invocationId": "1"}
    assert protocol.completion("1", result={"x": 1}) == {"type": 3, "invocationId": "1", "result": {"x": 1}}
    assert protocol.completion("1", error="no") == {"type": 3, "invocationId": "1", "error": "no"}


def test_close_carries_only_what_applies():
    assert protocol.close() == {"type": 7}
    assert protocol.close(allow_reconnect=True) == {"type": 7, "allowReconnect": True}
    assert protocol.close(error="no") == {"type": 7, "error": "no"}


# --- Events -----------------------------------------------------------------------------------------------------


def test_a_notification_is_an_invocation_of_its_event_with_data_at_the_top_level():
    message = protocol.render_message(NotificationMessage(notification=notification(), replayed=False))

    assert message == {
        "type": 1,
        "target": "DocumentApproved",
        "arguments": [
            {
                "notificationId": "6f1c2f0e-8d4b-4a57-9e0c-2f7a3c1d9b10",
                "title": "Approved",
                "body": "Bob approved it",
                "actions": [],
                "documentId": 7,
                "approvedBy": "Bob",
                "step": 1,
                "timestamp": "2026-11-27T08:55:00+00:00",
            }
        ],
    }


def test_data_never_overrides_the_notification_id_title_or_body():
    data = {"notificationId": "forged", "title": "forged", "body": "forged", "documentId": 99, "timestamp": "t"}

    argument = protocol.notification_argument(notification(data=data))

    assert (argument["notificationId"], argument["title"], argument["body"]) == (
        "6f1c2f0e-8d4b-4a57-9e0c-2f7a3c1d9b10",
        "Approved",
        "Bob approved it",
    )
    assert (argument["documentId"], argument["timestamp"]) == (99, "t")  # data's own, like the original hub's


def test_without_data_timestamp_and_document_come_from_the_notification():
    argument = protocol.notification_argument(notification(data={}, document_id=None))

    assert argument == {
        "notificationId": "6f1c2f0e-8d4b-4a57-9e0c-2f7a3c1d9b10",
        "title": "Approved",
        "body": "Bob approved it",
        "actions": [],
        "timestamp": "2026-11-27T08:55:01.123456+00:00",
    }
    assert protocol.notification_argument(notification(data={}))["documentId"] == 7


def test_actions_are_camel_cased_and_data_never_overrides_them():
    actions = [{"id": "reject", "label": "Reject", "requires_comment": True}]

    argument = protocol.notification_argument(notification(data={"actions": "forged"}, actions=actions))

    assert argument["actions"] == [{"id": "reject", "label": "Reject", "requiresComment": True}]


def test_an_action_result_is_the_completion_of_perform_action():
    performed_at = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    reply = ActionPerformed("6f1c", "approve", "approved", performed_at, already_performed=False)

    assert protocol.render_message(reply) is None  # a completion carries it
    assert protocol.render_result(reply) == {
        "notificationId": "6f1c",
        "action": "approve",
        "outcome": "approved",
        "performedAt": "2026-12-06T03:00:00+00:00",
        "alreadyPerformed": False,
    }


def test_hello_and_replay_complete_have_no_signalr_message():
    now = datetime.now(UTC)
    hello = Hello(UserRef(1, "a"), [], 0, now, now, 20.0)

    assert protocol.render_message(hello) is None
    assert protocol.render_message(ReplayComplete(count=3)) is None


def test_room_replies_render_as_camel_case_results():
    joined = RoomJoined(document_id=4, members=[UserRef(1, "alice")])

    assert protocol.render_result(joined) == {"documentId": 4, "members": [{"id": 1, "username": "alice"}]}
    assert protocol.render_result(RoomLeft(document_id=4)) == {"documentId": 4}
    assert protocol.render_result(None) is None


def test_hub_methods_are_keyed_by_their_lower_cased_names():
    assert {method.name for method in HUB_METHODS.values()} >= {
        "AcknowledgeNotification",
        "MarkRead",
        "SubscribeDocument",
        "Typing",
    }
    assert all(key == method.name.lower() for key, method in HUB_METHODS.items())
