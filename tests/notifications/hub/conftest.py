"""Fixtures of the hub's end-to-end tests (the server fixtures and `connect` are in tests/conftest.py)."""

import pytest
from channels.layers import channel_layers
from django.conf import settings as django_settings

from tests.support.hub_client import NativeClient, access_token
from tests.support.redis_server import PrivateRedis
from tests.support.signalr_client import SignalRSocket

# SignalR timers short enough to watch in a test (the same code; settings only).
QUICK_KEEPALIVE, QUICK_CLIENT_TIMEOUT, QUICK_HANDSHAKE_TIMEOUT = 0.3, 3.0, 1.0


@pytest.fixture(scope="session")
def quick_timers_server(start_server):
    """A daphne whose SignalR keep-alive, client timeout and handshake timeout are a few seconds at most."""
    return start_server(
        "signalr-quick-timers",
        env={
            "SIGNALR_KEEPALIVE_INTERVAL": str(QUICK_KEEPALIVE),
            "SIGNALR_CLIENT_TIMEOUT": str(QUICK_CLIENT_TIMEOUT),
            "SIGNALR_HANDSHAKE_TIMEOUT": str(QUICK_HANDSHAKE_TIMEOUT),
        },
    )


@pytest.fixture
def private_redis(settings):
    """A redis-server of this test's own (see tests/support/redis_server.py) as the layer and presence store.

    Servers started during the test (`start_server`) use it too.
    """
    redis_server = PrivateRedis()
    redis_server.start()
    settings.REDIS_URL = redis_server.url
    layer = django_settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {
        "default": {
            **layer,
            "CONFIG": {**layer["CONFIG"], "hosts": [{**layer["CONFIG"]["hosts"][0], "address": redis_server.url}]},
        }
    }
    settings.NOTIFY_PRESENCE_HEARTBEAT = 0.3
    channel_layers.backends.clear()
    yield redis_server
    redis_server.stop()
    channel_layers.backends.clear()


@pytest.fixture
def devices(hub_server, redis_client):
    """devices(user) -> (native, signalr): two started connections of the user, closed after the test."""
    opened = []

    def open_devices(user) -> tuple[NativeClient, SignalRSocket]:
        native = NativeClient.connect(hub_server, token=access_token(user))
        native.hello, native.replayed = native.start()
        signalr = SignalRSocket.started(hub_server, token=access_token(user))
        opened.extend([native, signalr])
        return native, signalr

    yield open_devices
    for client in opened:
        client.close()
