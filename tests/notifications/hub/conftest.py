"""Fixtures of the hub's end-to-end tests (the server fixtures are in tests/conftest.py)."""

import pytest

from tests.support.hub_client import NativeClient, access_token


@pytest.fixture
def connect(hub_server, redis_client):
    """connect(user, server=hub_server) -> a started NativeClient, closed after the test.

    Started means `hello` and the replay were read: see `client.hello` and `client.replayed`.
    """
    clients = []

    def open_client(user, server=hub_server) -> NativeClient:
        client = NativeClient.connect(server, token=access_token(user))
        client.hello, client.replayed = client.start()
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


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
