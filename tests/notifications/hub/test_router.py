"""The process router: one layer member per process and group, recovery when Redis restarts, and its watchdog."""

import asyncio
import json
import logging
import socket
import threading
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from notifications import layer, presence
from notifications.hub import router as hub_router_module
from notifications.hub.client_messages import NotificationMessage
from notifications.hub.consumer import OUTBOX_LIMIT
from notifications.hub.native import NativeHubConsumer
from notifications.hub.signalr import protocol
from notifications.hub.signalr.consumer import SignalRHubConsumer
from notifications.models import Delivery
from notifications.services import notification_publish
from notifyhub.asgi import application
from tests.support.api import client_for
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient, access_token, until_notification
from tests.support.waiting import eventually, eventually_async

pytestmark = pytest.mark.django_db(transaction=True)

LAYER_PREFIX = django_settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]


def group_members(redis_client, group: str) -> list[bytes]:
    return redis_client.zrange(f"{LAYER_PREFIX}:group:{group}", 0, -1)


def test_a_department_has_one_layer_member_per_process_and_every_connection_gets_it(connect, redis_client):
    department = DepartmentFactory()
    members = [UserFactory() for _ in range(3)]
    add_members(department, *members)
    clients = [connect(user) for user in members for _ in range(2)]  # two devices each, one server process
    group = layer.department_group(department.pk)

    assert len(group_members(redis_client, group)) == 1
    notification = notification_publish(event="Ping", title="all", department_ids=[department.pk])
    for client in clients:
        frames = client.frames_until(until_notification(notification.pk))
        assert [frame["id"] for frame in frames if frame["type"] == "notification"] == [str(notification.pk)]

    for client in clients:
        client.close()
    # The last local connection gone, the process leaves the group.
    assert eventually(lambda: group_members(redis_client, group) == [])


def test_the_group_stays_while_one_local_connection_is_left(connect, redis_client):
    user = UserFactory()
    phone, laptop = connect(user), connect(user)
    group = layer.user_group(user.pk)

    phone.close()
    assert eventually(lambda: presence_count(user) == 1)  # the server has let the phone go
    notification = notification_publish(event="Ping", title="still here", user_ids=[user.pk])

    assert laptop.frames_until(until_notification(notification.pk))[-1]["id"] == str(notification.pk)
    assert len(group_members(redis_client, group)) == 1


def test_after_redis_restarts_the_router_joins_its_groups_again(private_redis, monkeypatch):
    """A restart loses every group: the open connection still gets later notifications, without reconnecting."""
    monkeypatch.setattr(hub_router_module, "RETRY_SECONDS", 0.2)
    user = UserFactory()

    async def rejoined_and_online() -> bool:
        with private_redis.client() as client:
            rejoined = len(group_members(client, layer.user_group(user.pk))) == 1
        return rejoined and await presence.live_connection_count(user.pk) == 1

    async def scenario() -> tuple[str, dict]:
        communicator = WebsocketCommunicator(
            application, "/ws/notifications/", headers=[(b"authorization", f"Bearer {access_token(user)}".encode())]
        )
        connected, _ = await communicator.connect()
        assert connected
        assert (await communicator.receive_json_from())["type"] == "hello"
        assert (await communicator.receive_json_from())["type"] == "replay_complete"

        await asyncio.to_thread(private_redis.restart)
        # Published before the router re-joined its group, or while the user looked offline, it would not go live.
        assert await eventually_async(rejoined_and_online)
        notification = await database_sync_to_async(notification_publish)(
            event="Ping", title="after the restart", user_ids=[user.pk]
        )
        frame = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return str(notification.pk), frame

    notification_id, frame = asyncio.run(scenario())

    assert (frame["type"], frame["id"]) == ("notification", notification_id)


def stalled_socket(server, user) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads: its buffers fill up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        (
            "GET /ws/notifications/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {access_token(user)}\r\n\r\n"
        ).encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def test_a_client_that_stops_reading_holds_up_nobody_else(each_server, redis_client):
    """uvicorn pauses sends to a client whose buffers are full: only that connection's writer may wait."""
    server = each_server
    slow_user, other = UserFactory(), UserFactory()
    sock = stalled_socket(server, slow_user)
    client = NativeClient.connect(server, token=access_token(other))
    client.start()
    try:
        assert eventually(lambda: presence_count(slow_user) == 1)
        big_body = "x" * 60_000
        for _ in range(150):  # ~9 MB: well past the kernel's and the server's buffers for one socket
            notification_publish(event="Ping", title="big", body=big_body, user_ids=[slow_user.pk])
        started = time.monotonic()
        notification = notification_publish(event="Ping", title="for the reader", user_ids=[other.pk])

        frame = client.frames_until(until_notification(notification.pk), timeout=5)[-1]

        assert frame["id"] == str(notification.pk)
        assert time.monotonic() - started < 5
    finally:
        client.close()
        sock.close()


def presence_count(user) -> int:
    return presence.live_connection_counts([user.pk]).get(user.pk, 0)


def test_a_client_too_slow_for_its_backlog_is_dropped_and_counts_as_offline(uvicorn_server, redis_client):
    """Past OUTBOX_LIMIT waiting messages the hub gives up on the socket: the user's deliveries go the push way."""
    slow_user = UserFactory()
    sock = stalled_socket(uvicorn_server, slow_user)
    try:
        assert eventually(lambda: presence_count(slow_user) == 1)
        for _ in range(150):  # fill the socket's buffers
            notification_publish(event="Ping", title="big", body="x" * 60_000, user_ids=[slow_user.pk])
        for _ in range(OUTBOX_LIMIT + 20):
            notification_publish(event="Ping", title="small", user_ids=[slow_user.pk])

        assert eventually(lambda: presence_count(slow_user) == 0, timeout=15)
        later = notification_publish(event="Ping", title="offline now", user_ids=[slow_user.pk])
        assert Delivery.objects.get(notification=later).status != Delivery.Status.SENT
    finally:
        sock.close()


def test_a_live_frame_is_rendered_once_per_protocol_and_is_what_each_protocol_sends():
    payload = {
        "id": "0b8f4c3e-1111-4222-8333-444455556666",
        "event": "NewTask",
        "title": "t",
        "body": "",
        "data": {"documentId": 1},
        "document_id": None,
        "priority": "normal",
        "created_at": "2026-11-28T00:00:00+00:00",
        "expires_at": None,
    }
    native, signalr = NativeHubConsumer(), SignalRHubConsumer()

    native_frame, signalr_frame = native._live_frame(payload), signalr._live_frame(payload)

    assert json.loads(native_frame) == {"type": "notification", **payload, "replayed": False}
    invocation = protocol.render_message(NotificationMessage(notification=payload, replayed=False))
    assert signalr_frame == protocol.encode(invocation)
    assert invocation["target"] == "NewTask"
    assert NativeHubConsumer()._live_frame(payload) is native_frame  # the cache, shared by the protocol's connections


# --- The watchdog: the receive task restarted when it ends or hangs; /healthz reports the router -----------------


@pytest.fixture
def quick_watchdog(monkeypatch):
    """A watchdog that looks every 0.1 s and calls a receive stuck after 0.5 s of silence (the same code),
    on a channel-layer object of the test's own.

    These tests cancel receives; channels-redis keeps per-channel asyncio locks on the layer object, which a later
    test's event loop could then not use (a server has one loop for its lifetime).
    """
    monkeypatch.setattr(hub_router_module, "PING_INTERVAL", 0.1)
    monkeypatch.setattr(hub_router_module, "RECEIVE_STUCK_AFTER", 0.5)
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def connected(user) -> WebsocketCommunicator:
    """A native connection in this event loop, past hello and its (empty) replay: the router has a member."""
    communicator = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"authorization", f"Bearer {access_token(user)}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"
    assert (await communicator.receive_json_from())["type"] == "replay_complete"
    return communicator


def router_receive_task() -> asyncio.Task:
    [task] = [task for task in asyncio.all_tasks() if task.get_name() == "hub-router-receive"]
    return task


async def published_and_received(user, communicator: WebsocketCommunicator, title: str) -> tuple[str, dict]:
    notification = await database_sync_to_async(notification_publish)(event="Ping", title=title, user_ids=[user.pk])
    return str(notification.pk), await communicator.receive_json_from(timeout=10)


def test_a_receive_task_that_ends_is_started_again_and_group_messages_still_arrive(quick_watchdog, redis_client):
    user = UserFactory()

    async def scenario() -> tuple[str, dict]:
        communicator = await connected(user)
        receive = router_receive_task()
        receive.cancel()  # as an unexpected exception or a stray cancellation would end it
        await asyncio.wait([receive])
        delivered = await published_and_received(user, communicator, "after the receive task ended")
        await communicator.disconnect()
        return delivered

    notification_id, frame = asyncio.run(scenario())

    assert (frame["type"], frame["id"]) == ("notification", notification_id)


class HangingReceive:
    """Our seam to the layer's receive, made to wait forever while `hanging` is set (as a BLPOP on a half-open
    Redis connection does: socket_timeout=None); each call checks the flag when it starts."""

    def __init__(self, monkeypatch) -> None:
        self.hanging = threading.Event()
        self.calls = 0
        self._receive = layer.process_channel_receive
        monkeypatch.setattr(layer, "process_channel_receive", self)

    async def __call__(self, channel_name: str) -> dict:
        self.calls += 1
        if self.hanging.is_set():
            await asyncio.get_running_loop().create_future()  # never done; only cancellation ends it
        return await self._receive(channel_name)


def test_a_receive_that_hangs_is_restarted_by_the_watchdog_and_messages_flow(
    quick_watchdog, monkeypatch, redis_client, caplog
):
    user = UserFactory()
    receive = HangingReceive(monkeypatch)
    receive.hanging.set()

    async def scenario() -> tuple[str, dict]:
        communicator = await connected(user)  # the router's first receive hangs from the start
        receive.hanging.clear()  # ...and only a new one would work
        delivered = await published_and_received(user, communicator, "while the receive hung")
        await communicator.disconnect()
        return delivered

    with caplog.at_level(logging.ERROR, logger="notifications.hub.router"):
        notification_id, frame = asyncio.run(scenario())

    assert (frame["type"], frame["id"]) == ("notification", notification_id)
    assert receive.calls >= 2
    assert "its receive heard nothing" in caplog.text


class LoopThread:
    """An event loop on its own thread, as a server's, while the test's thread calls /healthz."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_everything_else() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_everything_else())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def healthz() -> tuple[int, dict]:
    response = client_for().get("/healthz")
    return response.status_code, response.json()


def test_healthz_fails_while_the_router_receives_nothing_and_recovers(
    quick_watchdog, monkeypatch, redis_client, settings
):
    monkeypatch.setattr(hub_router_module, "UNHEALTHY_AFTER", 1.0)
    settings.READINESS_MAX_AGE = 0  # each call checks now (results shared for a while: tests/core/api/test_health.py)
    user = UserFactory()
    receive = HangingReceive(monkeypatch)
    server = LoopThread()
    try:
        communicator = server.run(connected(user))
        assert eventually(lambda: healthz()[0] == 200)
        assert healthz()[1]["checks"]["hub_router"] == "ok"

        receive.hanging.set()
        server.run(cancel(router_receive_task))  # the running receive goes; every one started now hangs
        # Restarted, the receive hangs again each time: its pings go unanswered past UNHEALTHY_AFTER (read from this
        # thread, as a resend pacer would).
        assert eventually(lambda: hub_router_module.process_behind_seconds() > 1.0)
        status, body = healthz()
        assert (status, body["failed"]) == (503, ["hub_router"])

        receive.hanging.clear()  # the watchdog's next restart works
        assert eventually(lambda: healthz()[0] == 200)
        assert eventually(lambda: hub_router_module.process_behind_seconds() < 1.0)
        server.run(communicator.disconnect())
    finally:
        server.close()


async def cancel(find_task) -> None:
    task = find_task()
    task.cancel()
    await asyncio.wait([task])
