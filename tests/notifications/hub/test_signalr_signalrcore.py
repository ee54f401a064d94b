"""signalrcore 1.0.2 (PyPI), unchanged: negotiate version 0, handshake version 0, an invocationId on every call."""

import queue
import threading

import pytest
from signalrcore.hub_connection_builder import HubConnectionBuilder

from notifications.models import Delivery
from notifications.services import notification_publish
from tests.support.factories import UserFactory
from tests.support.hub_client import access_token

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 15


@pytest.fixture
def signalrcore(quick_timers_server, redis_client):
    """signalrcore(user) -> (connection, events queue, errors queue), started and stopped after the test.

    On the server with a short keep-alive: signalrcore's `stop()` waits for its reader thread, which only wakes
    when the server sends something.
    """
    connections = []

    def connect(user):
        token = access_token(user)
        connection = (
            HubConnectionBuilder()
            .with_url(quick_timers_server.http_url("/hubs/workflow"), options={"access_token_factory": lambda: token})
            .build()
        )
        opened, events, errors = threading.Event(), queue.Queue(), queue.Queue()
        connection.on_open(opened.set)
        connection.on_error(errors.put)
        connection.on("NewTask", events.put)
        connections.append(connection)
        connection.start()
        assert opened.wait(TIMEOUT)
        return connection, events, errors

    yield connect
    for connection in connections:
        connection.stop()


def test_receives_events_and_acknowledges_them(signalrcore):
    user = UserFactory()
    missed = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk], data={"documentId": 3})
    connection, events, errors = signalrcore(user)

    [argument] = events.get(timeout=TIMEOUT)
    completed = queue.Queue()
    connection.send("AcknowledgeNotification", [argument["notificationId"]], on_invocation=completed.put)
    connection.send("LaunchRockets", [])

    assert (argument["notificationId"], argument["documentId"]) == (str(missed.pk), 3)
    assert completed.get(timeout=TIMEOUT).error is None
    assert errors.get(timeout=TIMEOUT).error == "Unknown hub method 'LaunchRockets'"
    assert Delivery.objects.get(notification=missed).status == Delivery.Status.ACKNOWLEDGED
