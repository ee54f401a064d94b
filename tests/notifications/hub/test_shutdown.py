"""When daphne shuts down (SIGTERM), every hub connection is told to reconnect before its socket closes.

Both servers under publishing load: tests/notifyhub/test_shutdown.py."""

import pytest

from notifications import presence
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token
from tests.support.signalr_client import SignalRSocket

pytestmark = pytest.mark.django_db(transaction=True)


def test_signalr_clients_get_close_with_allow_reconnect_then_1000(start_server, redis_client):
    server = start_server("shutdown-signalr")
    client = SignalRSocket.started(server, token=access_token(UserFactory()))

    server.stop()

    closed = client.closed()
    assert closed.frames == [{"type": 7, "allowReconnect": True}]
    assert closed.code == 1000


def test_native_clients_get_an_error_frame_and_1012_and_leave_presence(start_server, redis_client):
    user = UserFactory()
    server = start_server("shutdown-native")
    client = NativeClient.connect(server, token=access_token(user))
    client.start()
    assert presence.is_online(user.pk)

    server.stop()

    closed = client.closed()
    assert closed.frames == [{"type": "error", "code": "server_shutdown", "message": "server restarting"}]
    assert (closed.code, closed.reason) == (1012, "server restarting")
    assert not presence.is_online(user.pk)
