"""The caller's inbox: list, filters, detail, ack, read, read-all, unread count; never anyone else's."""

import asyncio
import uuid
from base64 import b64encode
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from notifications import layer
from notifications.models import Delivery, Notification
from notifications.services import notification_publish
from tests.support.api import assert_error, client_for
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


def publish_to(*users, **kwargs) -> Notification:
    kwargs.setdefault("event", "Ping")
    kwargs.setdefault("title", "t")
    return notification_publish(user_ids=[user.pk for user in users], **kwargs)


async def receive_within(channel_layer, channel: str, seconds: float) -> dict:
    return await asyncio.wait_for(channel_layer.receive(channel), seconds)


def delivery(notification, user) -> Delivery:
    return Delivery.objects.get(notification=notification, recipient=user)


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def intruder():
    return UserFactory()


class TestList:
    def test_lists_only_mine_newest_first_with_cursor_pages(self, owner, intruder):
        mine = [publish_to(owner, title=f"n{index}") for index in range(5)]
        publish_to(intruder, title="not yours")
        client = client_for(owner)

        first = client.get(URL, {"page_size": 2}).json()
        second = client.get(first["next"]).json()
        third = client.get(second["next"]).json()

        titles = [item["title"] for page in (first, second, third) for item in page["results"]]
        assert titles == ["n4", "n3", "n2", "n1", "n0"]
        assert third["next"] is None
        assert {item["id"] for item in first["results"]} == {str(mine[4].pk), str(mine[3].pk)}

    def test_item_carries_the_websocket_payload_and_my_delivery_state(self, owner):
        notification = publish_to(owner, data={"documentId": 7}, priority="high")
        item = client_for(owner).get(URL).json()["results"][0]
        payload = layer.notification_payload(notification)
        assert {key: item[key] for key in payload} == {
            **payload,
            "created_at": item["created_at"],  # same instant, DRF's ISO format
        }
        assert item["status"] == "pending"
        assert item["unread"] is True
        assert item["read_at"] is None

    def test_filters_unread_event_and_since(self, owner):
        old = publish_to(owner, event="Old")
        Delivery.objects.filter(notification=old).update(created_at=timezone.now() - timedelta(days=2))
        read = publish_to(owner, event="Read")
        fresh = publish_to(owner, event="Fresh")
        client = client_for(owner)
        client.post(f"{URL}{read.pk}/read/")

        def ids(**params):
            return [item["id"] for item in client.get(URL, params).json()["results"]]

        assert ids(unread="true") == [str(fresh.pk), str(old.pk)]
        assert ids(unread="false") == [str(read.pk)]
        assert ids(event="Fresh") == [str(fresh.pk)]
        assert ids(since=(timezone.now() - timedelta(days=1)).isoformat()) == [str(fresh.pk), str(read.pk)]

    def test_expired_notifications_are_left_out(self, owner):
        publish_to(owner, expires_at=timezone.now() + timedelta(seconds=5))
        Notification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        live = publish_to(owner)
        assert [item["id"] for item in client_for(owner).get(URL).json()["results"]] == [str(live.pk)]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"unread": "maybe"}, "unread"),
            ({"since": "yesterday"}, "since"),
            ({"cursor": "garbage"}, "cursor"),
            ({"cursor": b64encode(b"o=0&p=not-a-time").decode()}, "cursor"),
            ({"event": "\x00"}, "event"),
        ],
    )
    def test_bad_filter_or_cursor_is_a_400(self, owner, params, field):
        publish_to(owner)
        error = assert_error(client_for(owner).get(URL, params), 400, "invalid")
        assert field in error["fields"]


class TestDetail:
    def test_mine(self, owner):
        notification = publish_to(owner)
        response = client_for(owner).get(f"{URL}{notification.pk}/")
        assert response.status_code == 200
        assert response.json()["id"] == str(notification.pk)

    @pytest.mark.parametrize("notification_id", ["not-a-uuid", str(uuid.uuid4()), "1"])
    def test_unknown_is_404(self, owner, notification_id):
        assert_error(client_for(owner).get(f"{URL}{notification_id}/"), 404, "not_found")


class TestOwnership:
    """User A can never read, ack or mark B's notification: 404 as if it did not exist, nothing changed."""

    @pytest.mark.parametrize(
        ("method", "suffix"), [("get", ""), ("post", "ack/"), ("post", "read/"), ("get", "deliveries/")]
    )
    def test_someone_elses_notification_is_404_and_unchanged(self, owner, intruder, method, suffix):
        notification = publish_to(owner)
        before = delivery(notification, owner)

        missing_id = uuid.uuid4()
        response = getattr(client_for(intruder), method)(f"{URL}{notification.pk}/{suffix}")
        missing = getattr(client_for(intruder), method)(f"{URL}{missing_id}/{suffix}")

        assert_error(response, 404, "not_found")
        # No existence leak: the answer is the one for an id that never existed.
        assert response.json()["message"].replace(str(notification.pk), "ID") == missing.json()["message"].replace(
            str(missing_id), "ID"
        )
        after = delivery(notification, owner)
        assert (after.status, after.acknowledged_at, after.read_at) == (before.status, None, None)

    def test_read_all_touches_only_mine(self, owner, intruder):
        theirs = publish_to(owner)
        publish_to(intruder)
        response = client_for(intruder).post(f"{URL}read-all/")
        assert response.json() == {"marked_read": 1, "unread_count": 0}
        assert delivery(theirs, owner).read_at is None


class TestTransitions:
    def test_ack_is_recorded_and_idempotent(self, owner):
        notification = publish_to(owner)
        client = client_for(owner)
        first = client.post(f"{URL}{notification.pk}/ack/")
        second = client.post(f"{URL}{notification.pk}/ack/")
        assert first.status_code == second.status_code == 200
        assert first.json()["status"] == "acknowledged"
        assert first.json()["acknowledged_at"] == second.json()["acknowledged_at"] is not None
        assert first.json()["unread"] is True

    def test_read_syncs_my_live_connections(self, owner, redis_client, django_capture_on_commit_callbacks):
        """Reading over the API tells the user's WebSocket connections, exactly as reading over the socket does."""
        notification = publish_to(owner)
        other = publish_to(owner)
        channel_layer = get_channel_layer()
        channel = async_to_sync(channel_layer.new_channel)()
        async_to_sync(channel_layer.group_add)(layer.user_group(owner.pk), channel)

        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(owner).post(f"{URL}{notification.pk}/read/")

        assert response.status_code == 200
        assert response.json()["status"] == "read"
        assert response.json()["unread"] is False
        message = async_to_sync(receive_within)(channel_layer, channel, 5)
        assert message == {
            "type": "notifications.read",
            "group": layer.user_group(owner.pk),
            "ids": [str(notification.pk)],
            "unread_count": 1,
            "origin": None,
        }
        assert delivery(other, owner).read_at is None

    def test_read_all_and_unread_count(self, owner):
        for _ in range(3):
            publish_to(owner)
        client = client_for(owner)
        assert client.get(f"{URL}unread-count/").json() == {"unread_count": 3}
        assert client.post(f"{URL}read-all/").json() == {"marked_read": 3, "unread_count": 0}
        assert client.post(f"{URL}read-all/").json() == {"marked_read": 0, "unread_count": 0}
        assert client.get(f"{URL}unread-count/").json() == {"unread_count": 0}
        assert not Delivery.objects.filter(recipient=owner, read_at__isnull=True).exists()
