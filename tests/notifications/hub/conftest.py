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
