"""The process router: one layer member per process and group, and recovery when Redis restarts."""

import asyncio
import socket
import subprocess
import time

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from notifications import events
from notifications.hub import router as hub_router_module
from notifications.services import notification_publish
from notifyhub.asgi import application
from tests.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import access_token, until_notification

pytestmark = pytest.mark.django_db(transaction=True)

LAYER_PREFIX = django_settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]


def group_members(redis_client, group: str) -> list[bytes]:
    return redis_client.zrange(f"{LAYER_PREFIX}:group:{group}", 0, -1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_department_has_one_layer_member_per_process_and_every_connection_gets_it(connect, redis_client):
    department = DepartmentFactory()
    members = [UserFactory() for _ in range(3)]
    add_members(department, *members)
    clients = [connect(user) for user in members for _ in range(2)]  # two devices each, one server process
    group = events.department_group(department.pk)

    assert len(group_members(redis_client, group)) == 1
    notification = notification_publish(event="Ping", title="all", department_ids=[department.pk])
    for client in clients:
        frames = client.frames_until(until_notification(notification.pk))
        assert [frame["id"] for frame in frames if frame["type"] == "notification"] == [str(notification.pk)]

    for client in clients:
        client.close()
    # The last local connection gone, the process leaves the group.
    assert wait_until(lambda: group_members(redis_client, group) == [])


def test_the_group_stays_while_one_local_connection_is_left(connect, redis_client):
    user = UserFactory()
    phone, laptop = connect(user), connect(user)
    group = events.user_group(user.pk)

    phone.close()
    time.sleep(0.5)
    notification = notification_publish(event="Ping", title="still here", user_ids=[user.pk])

    assert laptop.frames_until(until_notification(notification.pk))[-1]["id"] == str(notification.pk)
    assert len(group_members(redis_client, group)) == 1


@pytest.fixture
def private_redis(settings):
    """A redis-server of this test's own (it is restarted: never the shared one), as the layer and presence store."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start() -> subprocess.Popen:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        assert wait_until(lambda: _pings(client)), "private redis-server did not start"
        client.close()
        return process

    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {
            **django_settings.CHANNEL_LAYERS["default"],
            "CONFIG": {
                **django_settings.CHANNEL_LAYERS["default"]["CONFIG"],
                "hosts": [{**django_settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "address": url}],
            },
        }
    }
    settings.NOTIFY_PRESENCE_HEARTBEAT = 0.3
    channel_layers.backends.clear()
    state = {"process": start()}

    def restart() -> None:
        state["process"].kill()
        state["process"].wait()
        state["process"] = start()

    yield restart
    state["process"].kill()
    state["process"].wait()
    channel_layers.backends.clear()


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


def test_after_redis_restarts_the_router_joins_its_groups_again(private_redis, monkeypatch):
    """A restart loses every group: the open connection still gets later notifications, without reconnecting."""
    monkeypatch.setattr(hub_router_module, "RETRY_SECONDS", 0.2)
    user = UserFactory()

    async def scenario() -> tuple[str, dict]:
        communicator = WebsocketCommunicator(
            application, "/ws/notifications/", headers=[(b"authorization", f"Bearer {access_token(user)}".encode())]
        )
        connected, _ = await communicator.connect()
        assert connected
        assert (await communicator.receive_json_from())["type"] == "hello"
        assert (await communicator.receive_json_from())["type"] == "replay_complete"

        await asyncio.to_thread(private_redis)
        await asyncio.sleep(2)  # the router re-joins; the heartbeat re-registers presence
        notification = await database_sync_to_async(notification_publish)(
            event="Ping", title="after the restart", user_ids=[user.pk]
        )
        frame = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return str(notification.pk), frame

    notification_id, frame = asyncio.run(scenario())

    assert (frame["type"], frame["id"]) == ("notification", notification_id)
