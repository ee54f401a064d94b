"""Each layer message's fields, pinned: every process of a deployment must agree on them (during a rolling
deploy an older process reads what a newer one sends), so a change here is a protocol change."""

from notifications import layer_messages

PAYLOAD: layer_messages.NotificationPayload = {
    "id": "5f0e7f0a-2b8e-4a55-9a43-6d1f3f1c7a10",
    "event": "NewTask",
    "title": "Approve invoice #7",
    "body": "",
    "data": {"documentId": 7},
    "document_id": 7,
    "priority": "normal",
    "created_at": "2026-12-05T08:00:00+00:00",
    "expires_at": None,
}
ALICE: layer_messages.LayerUser = {"id": 3, "username": "alice"}


def test_notification_created_to_a_user():
    assert layer_messages.notification_created(PAYLOAD) == {"type": "notification.created", "notification": PAYLOAD}


def test_notification_created_to_a_department_names_its_recipients():
    assert layer_messages.notification_created(PAYLOAD, recipient_ids=[3, 9]) == {
        "type": "notification.created",
        "notification": PAYLOAD,
        "recipient_ids": [3, 9],
    }


def test_notifications_read():
    assert layer_messages.notifications_read(ids=[PAYLOAD["id"]], unread_count=4, origin="hub~a~b") == {
        "type": "notifications.read",
        "ids": [PAYLOAD["id"]],
        "unread_count": 4,
        "origin": "hub~a~b",
    }


def test_room_presence():
    assert layer_messages.room_presence(document_id=7, user=ALICE, state="join", origin="hub~a~b") == {
        "type": "room.presence",
        "document_id": 7,
        "user": {"id": 3, "username": "alice"},
        "state": "join",
        "origin": "hub~a~b",
    }


def test_room_typing():
    assert layer_messages.room_typing(document_id=7, user=ALICE, origin="hub~a~b") == {
        "type": "room.typing",
        "document_id": 7,
        "user": {"id": 3, "username": "alice"},
        "origin": "hub~a~b",
    }


def test_user_deactivated():
    assert layer_messages.user_deactivated() == {"type": "user.deactivated"}


def test_router_ping():
    assert layer_messages.router_ping(12) == {"type": "hub.router.ping", "ping": 12}


def test_every_type_names_a_consumer_handler():
    """Channels calls the consumer method named by `type` with dots as underscores; the router keeps its pings."""
    from notifications.hub.consumer import HubConsumer

    handled = [
        layer_messages.NOTIFICATION_CREATED,
        layer_messages.NOTIFICATIONS_READ,
        layer_messages.ROOM_PRESENCE,
        layer_messages.ROOM_TYPING,
        layer_messages.USER_DEACTIVATED,
    ]
    assert all(callable(getattr(HubConsumer, kind.replace(".", "_"), None)) for kind in handled)
