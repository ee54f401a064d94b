"""Shared fixtures. Tests run against real PostgreSQL and real Redis (see Makefile)."""

import os

import pytest
import redis
from django.conf import settings

from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient, access_token
from tests.support.presence_registry import settle_presence_registry
from tests.support.servers import HubServer


def pytest_configure(config) -> None:
    _retry_flush_on_deadlock()


def _retry_flush_on_deadlock() -> None:
    """A transactional test's teardown empties every table with one TRUNCATE. Hub servers are processes on the
    same test database: one still loading a connection's session (a client that closed just after the handshake)
    holds a read lock the TRUNCATE must wait for while it waits for another, and PostgreSQL aborts one of the two
    as a deadlock. The server retries its read (a transient database error); the teardown does the same here."""
    from django.core.management.base import CommandError
    from django.db import connection
    from django.test import TransactionTestCase

    flush = TransactionTestCase._fixture_teardown

    def flush_retrying_deadlocks(self) -> None:
        for attempt in range(3):
            try:
                return flush(self)
            except CommandError as error:
                deadlock = "deadlock detected" in str(error.__cause__ or error)
                if not deadlock or attempt == 2:
                    raise
                connection.close()  # the aborted TRUNCATE left it in a failed transaction

    TransactionTestCase._fixture_teardown = flush_retrying_deadlocks


# Origins the shared hub server accepts: one exact origin and one host pattern (see notifications/hub/origin.py).
HUB_ALLOWED_ORIGINS = "https://app.example.com,.example.org"


@pytest.fixture
def redis_client():
    """The test Redis database, emptied before and after the test (its presence registry established)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    settle_presence_registry(client)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def department(db):
    return DepartmentFactory()


@pytest.fixture
def requester(department):
    user = UserFactory()
    add_members(department, user)
    return user


@pytest.fixture
def approvers(department):
    first, second = UserFactory(), UserFactory()
    add_members(department, first, second)
    return [first, second]


@pytest.fixture(scope="session")
def start_server(django_db_setup, tmp_path_factory):
    """Factory for real server processes on the test database and Redis (see tests/support/servers.py).

    `start_server(name, env={...}, kind="daphne"|"uvicorn", port=0)` returns a
    started `HubServer` (on `port`, e.g. a stopped one's to restart it); every
    server it started is stopped at the end of the run. Without `kind`, the
    server production runs (settings.ASGI_SERVER; TEST_ASGI_SERVER=daphne runs
    the whole suite under the other one).
    """
    servers: list[HubServer] = []
    log_dir = tmp_path_factory.mktemp("servers")

    def start(name: str, *, env: dict[str, str] | None = None, kind: str | None = None, port: int = 0) -> HubServer:
        environment = {"WS_ALLOWED_ORIGINS": HUB_ALLOWED_ORIGINS, **(env or {})}
        kind = kind or os.environ.get("TEST_ASGI_SERVER") or settings.ASGI_SERVER
        server = HubServer(name, log_path=log_dir / f"{name}.log", env=environment, kind=kind, port=port)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def hub_server(start_server) -> HubServer:
    """One server of production's kind (settings.ASGI_SERVER) serving notifyhub.asgi for the whole run; tests
    using it need django_db(transaction=True)."""
    return start_server("hub")


@pytest.fixture(scope="session")
def uvicorn_server(start_server) -> HubServer:
    """The application under uvicorn, whatever the suite's default server."""
    return start_server("uvicorn", kind="uvicorn")


@pytest.fixture(scope="session")
def daphne_server(start_server) -> HubServer:
    """The application under daphne (the development server behind runserver, and selectable in production)."""
    return start_server("daphne", kind="daphne")


@pytest.fixture(params=["daphne", "uvicorn"])
def each_server(request) -> HubServer:
    """Each ASGI server NotifyHub supports, in turn: for what both must do the same way."""
    return request.getfixturevalue(f"{request.param}_server")


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
