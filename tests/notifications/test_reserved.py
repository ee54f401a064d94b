"""The reserved names are what the hub really sends: every frame type, every SignalR target, every argument key."""

import re
from datetime import UTC, datetime
from pathlib import Path

from notifications.hub import native
from notifications.hub.client_messages import (
    ActionPerformed,
    Hello,
    NotificationMessage,
    NotificationResolved,
    NotificationsRead,
    Pong,
    ReplayComplete,
    RoomJoined,
    RoomLeft,
    RoomPresence,
    RoomTyping,
    UserRef,
)
from notifications.hub.native_frames import ServerFrame
from notifications.hub.signalr import protocol
from notifications.reserved import (
    RESERVED_DATA_KEYS,
    RESERVED_EVENT_NAMES,
    WORKFLOW_EVENTS,
    is_reserved_event,
    reserved_keys_in,
)
from notifications.services import workflow_notifications

DOCS = Path(__file__).resolve().parents[2] / "docs"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
USER = UserRef(1, "alice")
PAYLOAD = {
    "id": "6f1c2f0e-8d4b-4a57-9e0c-2f7a3c1d9b10",
    "event": "InvoiceOverdue",
    "title": "Invoice 42",
    "body": "",
    "data": {},
    "document_id": 7,
    "priority": "normal",
    "created_at": NOW.isoformat(),
    "expires_at": None,
}
EVERY_CLIENT_MESSAGE = [
    Hello(USER, [1], 0, NOW, NOW, 20.0),
    NotificationMessage(notification=PAYLOAD, replayed=False),  # type: ignore[arg-type]
    ReplayComplete(0),
    NotificationsRead(ids=["a"], unread_count=0),
    NotificationResolved(id="a", resolution="done", resolved_at=NOW.isoformat(), unread_count=0),
    ActionPerformed("a", "approve", "approved", NOW, already_performed=False),
    Pong(NOW),
    RoomJoined(7, [USER]),
    RoomLeft(7),
    RoomPresence(7, USER, "join"),
    RoomTyping(7, USER),
]


def documented_types(page: str, heading: str) -> set[str]:
    """The backticked names in the first column of the table under `heading`."""
    section = (DOCS / page).read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))


def test_every_native_frame_the_hub_sends_has_a_reserved_type_and_the_docs_list_them_all():
    sent = {frame["type"] for message in EVERY_CLIENT_MESSAGE for frame in native.render(message)}
    sent |= {native.error_frame("invalid", "x")["type"], ServerFrame.ACKED}

    assert sent == set(ServerFrame)
    assert documented_types("protocol.md", "## Server → client") == set(ServerFrame)
    assert all(is_reserved_event(frame_type) for frame_type in ServerFrame)


def test_every_signalr_target_but_notifications_is_reserved_and_the_docs_list_them_all():
    targets = {
        rendered["target"]
        for message in EVERY_CLIENT_MESSAGE
        if not isinstance(message, NotificationMessage) and (rendered := protocol.render_message(message)) is not None
    }

    assert targets == set(protocol.NON_NOTIFICATION_TARGETS)
    assert documented_types("signalr.md", "## Events (server → client)") == targets
    assert all(is_reserved_event(target) for target in targets)


def test_the_workflow_publishes_under_the_reserved_names():
    source = Path(workflow_notifications.__file__).read_text()

    assert 'event="' not in source  # every workflow event is one of the named constants
    assert {
        "NewTask",
        "DocumentApproved",
        "DocumentRejected",
        "TaskDelegated",
        "TaskReminder",
        "TaskEscalated",
    } == set(WORKFLOW_EVENTS)


def test_event_names_are_reserved_ignoring_case_and_others_are_not():
    for name in (
        "NewTask",
        "newtask",
        "DOCUMENTAPPROVED",
        "taskreminder",
        "TaskEscalated",
        "notificationsRead",
        "documentpresence",
        "HELLO",
        "Acked",
    ):
        assert is_reserved_event(name), name
    for name in ("InvoiceOverdue", "NewTasks", "hr.read", "documentApprovedBy"):
        assert not is_reserved_event(name), name
    assert len(RESERVED_EVENT_NAMES) == len(WORKFLOW_EVENTS) + len(protocol.NON_NOTIFICATION_TARGETS) + len(ServerFrame)


def test_the_reserved_data_keys_are_exactly_those_the_signalr_argument_sets_itself():
    argument = protocol.notification_argument({**PAYLOAD, "data": {}})  # type: ignore[typeddict-item]

    assert {key.casefold() for key in argument} == RESERVED_DATA_KEYS
    assert set(argument) == {*protocol.NOTIFICATION_OWN_KEYS, *protocol.NOTIFICATION_DEFAULT_KEYS}


def test_reserved_keys_in_names_them_as_written_ignoring_case():
    data = {"invoiceId": 1, "NotificationId": "x", "timestamp": "t", "documentid": 3, "bodyText": "b"}

    assert reserved_keys_in(data) == ["NotificationId", "timestamp", "documentid"]
    assert reserved_keys_in({"invoiceId": 1}) == []
