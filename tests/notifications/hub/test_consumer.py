"""In-process consumer tests with Channels' WebsocketCommunicator (the live-server tests cover the wire)."""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from notifications import layer, layer_messages
from notifications.hub import session as hub_session
from notifications.hub.consumer import HubConsumer, open_connections
from notifications.hub.rate_limit import MessageRateLimit
from notifications.hub.router import hub_router
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


def live_notification_to(user) -> dict:
    """A `notification.created` layer message to the user's group, as the router receives it."""
    payload = {
        "id": str(uuid.uuid4()),
        "event": "Ping",
        "title": "live",
        "body": "",
        "data": {},
        "document_id": None,
        "priority": "normal",
        "created_at": "2026-12-06T00:00:00+00:00",
        "expires_at": None,
        "actions": [],
    }
    return {**layer_messages.notification_created(payload), "group": layer.user_group(user.pk)}


def only_connection() -> HubConsumer:
    [connection] = open_connections()
    return connection


def test_a_live_notification_is_written_while_the_router_hands_it_over(redis_client):
    """No task and no wake-up per connection: the frame is in the server's hands when `route` returns."""
    user = UserFactory()

    async def scenario() -> tuple[int, dict, str]:
        communicator = communicator_for(user)
        await started(communicator)
        message = live_notification_to(user)
        hub_router().route(message)
        written_at_once = communicator.output_queue.qsize()
        frame = await communicator.receive_json_from()
        await communicator.disconnect()
        return written_at_once, frame, message["notification"]["id"]

    written_at_once, frame, notification_id = asyncio.run(scenario())

    assert written_at_once == 1
    assert (frame["type"], frame["id"], frame["replayed"]) == ("notification", notification_id, False)


def test_frames_keep_their_order_behind_a_send_that_has_to_wait(redis_client):
    """A send that waits (uvicorn pauses sends while the client's buffers are full) holds back the frames after
    it, which then go out in order; the router never waits for it."""
    user = UserFactory()

    async def scenario() -> tuple[int, list[str], list[str]]:
        communicator = communicator_for(user)
        await started(communicator)
        connection = only_connection()
        server_send, socket_writable = connection.base_send, asyncio.Event()

        async def send_when_writable(message: dict) -> None:
            await socket_writable.wait()
            await server_send(message)

        messages = [live_notification_to(user) for _ in range(3)]
        connection.base_send = send_when_writable
        hub_router().route(messages[0])  # its send waits for the socket
        connection.base_send = server_send
        for message in messages[1:]:
            hub_router().route(message)  # these could be written now, but wait behind the first
        written_while_paused = communicator.output_queue.qsize()
        socket_writable.set()
        frames = [await communicator.receive_json_from() for _ in messages]
        await communicator.disconnect()
        return written_while_paused, [frame["id"] for frame in frames], [m["notification"]["id"] for m in messages]

    written_while_paused, received, sent = asyncio.run(scenario())

    assert written_while_paused == 0
    assert received == sent


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


def test_a_crowd_of_connects_starts_its_sessions_a_few_at_a_time_and_all_get_hello(monkeypatch, redis_client):
    """After a restart every client reconnects at once: sessions start SESSION_STARTS_AT_ONCE at a time."""
    from notifications.hub import consumer

    monkeypatch.setattr(consumer, "SESSION_STARTS_AT_ONCE", 4)
    users = [UserFactory() for _ in range(12)]
    starting, most = 0, 0
    real_open = hub_session.HubSession.open

    async def slow_open(self, raw_token):
        nonlocal starting, most
        starting += 1
        most = max(most, starting)
        try:
            await asyncio.sleep(0.05)  # long enough for every other connect to be waiting
            return await real_open(self, raw_token)
        finally:
            starting -= 1

    monkeypatch.setattr(hub_session.HubSession, "open", slow_open)

    async def crowd() -> list[dict]:
        communicators = [communicator_for(user) for user in users]
        hellos = await asyncio.gather(*(started(communicator) for communicator in communicators))
        await asyncio.gather(*(communicator.disconnect() for communicator in communicators))
        return hellos

    hellos = asyncio.run(crowd())

    assert sorted(hello["user"]["id"] for hello in hellos) == sorted(user.pk for user in users)
    assert most == 4


def test_a_disconnect_ends_the_session_without_a_hop_to_the_database_thread(monkeypatch, redis_client):
    """Channels' disconnect handler hops to the thread-sensitive thread to close database connections, once per
    socket: most of a shutdown's CPU with thousands of them. The hub's database work closes its own."""
    from channels.generic import websocket

    from notifications import presence

    hops = []

    async def counted_hop() -> None:
        hops.append(1)

    monkeypatch.setattr(websocket, "aclose_old_connections", counted_hop)
    user = UserFactory()

    async def connect_then_disconnect() -> tuple[int, int]:
        communicator = communicator_for(user)
        await started(communicator)
        online = await presence.live_connection_count(user.pk)
        await communicator.disconnect()
        return online, await presence.live_connection_count(user.pk)

    assert asyncio.run(connect_then_disconnect()) == (1, 0)
    assert hops == []
