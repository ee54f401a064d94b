"""Fixtures of the hub's end-to-end tests (the server fixtures and `connect` are in tests/conftest.py)."""

import pytest
from channels.layers import channel_layers
from django.conf import settings as django_settings
from django.db import connection

from tests.support.celery_stack import CeleryStack, empty_test_redis, fake_fcm_environment
from tests.support.hub_client import NativeClient, access_token
from tests.support.redis_server import PrivateRedis
from tests.support.signalr_client import SignalRSocket

# SignalR timers short enough to watch in a test (the same code; settings only).
QUICK_KEEPALIVE, QUICK_CLIENT_TIMEOUT, QUICK_HANDSHAKE_TIMEOUT = 0.3, 3.0, 1.0
# The Celery stack's timings for `worker`: two quick WebSocket sends, then the push.
WORKER_ACK_TIMEOUT, WORKER_MAX_WS_ATTEMPTS = 0.5, 2


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


@pytest.fixture(scope="module")
def celery(django_db_setup, fake_fcm_server, tmp_path_factory):
    """A real Celery worker and beat (the sweep every 0.3 s) pushing to the fake FCM server, for one module."""
    empty_test_redis()
    environment = fake_fcm_environment(
        fake_fcm_server,
        {
            "NOTIFY_ACK_TIMEOUT": str(WORKER_ACK_TIMEOUT),
            "NOTIFY_MAX_WS_ATTEMPTS": str(WORKER_MAX_WS_ATTEMPTS),
            "NOTIFY_SWEEP_INTERVAL": "0.3",
        },
    )
    stack = CeleryStack.start(environment=environment, log_dir=tmp_path_factory.mktemp("celery"))
    yield stack
    stack.stop()


@pytest.fixture
def worker(celery, fcm, settings, transactional_db) -> CeleryStack:
    settings.NOTIFY_ACK_TIMEOUT = WORKER_ACK_TIMEOUT
    settings.NOTIFY_MAX_WS_ATTEMPTS = WORKER_MAX_WS_ATTEMPTS
    yield celery
    with connection.cursor() as cursor:  # see test_delivery_worker.py: let a sweep lose a deadlock, not teardown
        cursor.execute("SET deadlock_timeout = '30s'")


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
