"""In-process consumer tests with Channels' WebsocketCommunicator (the live-server tests cover the wire)."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from notifications.hub import session as hub_session
from notifications.hub.rate_limit import MessageRateLimit
from notifications.services import notification_publish
from notifyhub.asgi import application
from tests.support.factories import UserFactory
from tests.support.hub_client import access_token

pytestmark = pytest.mark.django_db(transaction=True)


def communicator_for(user) -> WebsocketCommunicator:
    headers = [(b"authorization", f"Bearer {access_token(user)}".encode())]
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


async def started(communicator: WebsocketCommunicator) -> dict:
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from()
    assert (await communicator.receive_json_from())["type"] == "replay_complete"
    return hello


def test_router_keeps_group_membership_alive_past_group_expiry(settings, redis_client):
    """channels-redis prunes group members older than group_expiry; the process's router re-adds itself."""
    settings.CHANNEL_LAYERS = {
        "default": {
            **django_settings.CHANNEL_LAYERS["default"],
            "CONFIG": {**django_settings.CHANNEL_LAYERS["default"]["CONFIG"], "group_expiry": 2},
        }
    }
    user = UserFactory()

    async def scenario() -> tuple[dict, str]:
        communicator = communicator_for(user)
        await started(communicator)
        await asyncio.sleep(3.5)  # past group_expiry, the time passing under test: only a refreshed membership is left
        notification = await database_sync_to_async(notification_publish)(
            event="Ping", title="still there?", user_ids=[user.pk]
        )
        frame = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return frame, str(notification.pk)

    frame, notification_id = asyncio.run(scenario())

    assert (frame["type"], frame["id"]) == ("notification", notification_id)


def test_presence_is_refreshed_by_the_heartbeat(settings, redis_client):
    settings.NOTIFY_PRESENCE_HEARTBEAT = 0.5
    settings.NOTIFY_PRESENCE_TTL = 1.5
    user = UserFactory()

    async def scenario() -> int:
        communicator = communicator_for(user)
        await started(communicator)
        await asyncio.sleep(3)  # twice the TTL, the time passing under test: only heartbeats keep the connection live
        count = await hub_session.presence.live_connection_count(user.pk)
        await communicator.disconnect()
        return count

    assert asyncio.run(scenario()) == 1


def test_disconnect_leaves_presence(redis_client):
    user = UserFactory()

    async def scenario() -> tuple[int, int]:
        communicator = communicator_for(user)
        await started(communicator)
        during = await hub_session.presence.live_connection_count(user.pk)
        await communicator.disconnect()
        return during, await hub_session.presence.live_connection_count(user.pk)

    assert asyncio.run(scenario()) == (1, 0)


class TestMessageRateLimit:
    def test_burst_then_refusal_then_refill(self, monkeypatch):
        now = [100.0]
        monkeypatch.setattr(hub_session.time, "monotonic", lambda: now[0])
        limit = MessageRateLimit(rate=2, burst=3)

        assert [limit.admit() for _ in range(4)] == [True, True, True, False]
        now[0] += 0.5  # one message's worth at 2/s
        assert [limit.admit(), limit.admit()] == [True, False]
        now[0] += 60  # refills to the burst, never beyond
        assert [limit.admit() for _ in range(4)] == [True, True, True, False]

    def test_each_notification_sent_grants_its_answer_beyond_the_rate(self, monkeypatch):
        monkeypatch.setattr(hub_session.time, "monotonic", lambda: 100.0)
        limit = MessageRateLimit(rate=2, burst=3)
        for _ in range(5):
            limit.grant()

        assert [limit.admit() for _ in range(9)] == [True] * 8 + [False]
