"""SignalR keep-alive, client timeout and handshake timeout, on a server whose timers are short (settings only)."""

import time

import pytest

from tests.notifications.hub.conftest import QUICK_CLIENT_TIMEOUT, QUICK_KEEPALIVE
from tests.support.factories import UserFactory
from tests.support.hub_client import access_token
from tests.support.signalr_client import SignalRSocket

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_idle_server_sends_keep_alive_pings(quick_timers_server, redis_client):
    with SignalRSocket.connect(quick_timers_server, token=access_token(UserFactory())) as client:
        assert client.handshake() == {}

        assert client.next_record() == {"type": 6}
        assert client.next_record() == {"type": 6}


def test_a_silent_client_is_told_to_reconnect_after_the_client_timeout(quick_timers_server, redis_client):
    with SignalRSocket.connect(quick_timers_server, token=access_token(UserFactory())) as client:
        assert client.handshake() == {}

        closed = client.closed()

    assert closed.frames[-1] == {"type": 7, "allowReconnect": True}
    assert {"type": 6} in closed.frames  # it was pinged before
    assert closed.code == 1000


def test_a_client_that_pings_stays_connected_past_the_timeout(quick_timers_server, redis_client):
    with SignalRSocket.connect(quick_timers_server, token=access_token(UserFactory())) as client:
        assert client.handshake() == {}
        deadline = time.monotonic() + QUICK_CLIENT_TIMEOUT * 1.5
        while time.monotonic() < deadline:
            client.send({"type": 6})
            time.sleep(QUICK_KEEPALIVE)  # a client's ping period: pinging for longer than the timeout is under test

        assert client.invoke("Nope")["error"] == "Unknown hub method 'Nope'"


def test_no_handshake_in_time_gets_the_standard_error(quick_timers_server):
    with SignalRSocket.connect(quick_timers_server, token=access_token(UserFactory())) as client:
        closed = client.closed()

    assert closed.frames == [{"error": "Handshake was canceled."}]
    assert closed.code == 1000
