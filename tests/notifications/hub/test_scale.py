"""1,000 concurrent connections on one hub server, held idle past redis-py's default 5 s socket timeout
(the channel layer's blocking read must not time out on it).

No speed is asserted here (that is bench/'s job): only that every connection
is accepted, stays up while idle, and receives what is published to it.
"""

import asyncio
import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from websockets.asyncio.client import connect

from notifications import presence
from notifications.services import notification_publish
from tests.support.factories import DepartmentFactory, add_members
from tests.support.hub_client import access_token

pytestmark = pytest.mark.django_db(transaction=True)

CONNECTIONS = 1_000
IDLE_SECONDS = 12  # past redis-py's default 5 s read timeout, which would drop an idle consumer's blocking read


async def open_hub_connection(url: str, token: str):
    socket = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None, open_timeout=120)
    while json.loads(await socket.recv())["type"] != "replay_complete":
        pass
    return socket


async def next_notification_id(socket) -> str:
    while True:
        frame = json.loads(await socket.recv())
        if frame["type"] == "notification":
            return frame["id"]


def publish_to_department(department_id: int) -> str:
    """Runs in a worker thread while the event loop keeps reading."""
    try:
        return str(notification_publish(event="Ping", title="everyone", department_ids=[department_id]).pk)
    finally:
        connection.close()


def test_a_thousand_connections_stay_up_while_idle_and_all_receive(hub_server, redis_client):
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"crowd{number}") for number in range(CONNECTIONS)])
    department = DepartmentFactory()
    add_members(department, *users)
    tokens = [access_token(user) for user in users]

    async def scenario() -> tuple[set[int], list[str], list[str], list[str]]:
        sockets = await asyncio.gather(*(open_hub_connection(hub_server.ws_url(), token) for token in tokens))
        online = await asyncio.to_thread(presence.online_user_ids, [user.pk for user in users])
        try:
            first = await asyncio.to_thread(publish_to_department, department.pk)
            received_first = await asyncio.wait_for(
                asyncio.gather(*(next_notification_id(socket) for socket in sockets)), timeout=60
            )
            await asyncio.sleep(IDLE_SECONDS)  # idle time is under test: nothing happens to wait for
            second = await asyncio.to_thread(publish_to_department, department.pk)
            received_second = await asyncio.wait_for(
                asyncio.gather(*(next_notification_id(socket) for socket in sockets)), timeout=60
            )
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))
        return online, [first, second], received_first, received_second

    online, published, received_first, received_second = asyncio.run(scenario())

    assert online == {user.pk for user in users}
    assert received_first == [published[0]] * CONNECTIONS
    assert received_second == [published[1]] * CONNECTIONS
