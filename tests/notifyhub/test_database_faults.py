"""PostgreSQL drops the web process's connections under load: nobody gets a 5xx or a 1011, no ack is lost.

A restart of PostgreSQL (or an operator terminating backends) kills every connection at once: the idle ones in
the web process's pool, and those with a query in flight. The pool checks a connection before handing it out;
a request or hub call whose query was cut off runs again when nothing was committed yet.
"""

import itertools
import json
import threading
import time
import uuid

import pytest
from django.db import connection
from websockets.exceptions import ConnectionClosed

from notifications.models import Delivery
from tests.support.api import make_publisher
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 12
# Like repeated PostgreSQL restarts a second or so apart. (Much faster than that, psycopg's pool backs off its
# reconnect attempts, 1 s, 2 s, 4 s ..., whenever a connection it is opening is killed, and requests wait.)
TERMINATIONS = 6
SECONDS_BETWEEN = 1.2


def terminate_other_backends() -> int:
    """Kill every connection to the test database but this one, as a PostgreSQL restart would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


class AckingClient(threading.Thread):
    """A connected client that acknowledges every notification and records what it saw."""

    def __init__(self, server, user) -> None:
        super().__init__(daemon=True)
        self.client = NativeClient.connect(server, token=access_token(user))
        self.client.start()
        self.received: set[str] = set()
        self.confirmed: set[str] = set()
        self.errors: list[dict] = []
        self.closed_with: int | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    frame = self.client.recv(timeout=0.2)
                except TimeoutError:
                    continue
                if frame["type"] == "notification":
                    self.received.add(frame["id"])
                    self.client.send(type="ack", id=frame["id"])
                elif frame["type"] == "acked":
                    self.confirmed.update(frame["ids"])
                elif frame["type"] == "error":
                    self.errors.append(frame)
        except ConnectionClosed as closed:
            self.closed_with = closed.rcvd.code if closed.rcvd else 1006


class Publisher(threading.Thread):
    """Publishes to the clients' users through the API, back to back, and records every final answer's status.

    A 429 (the publish rate limit, or a hub catching up) is an answer to honour, not a fault: the request is
    sent again with the same Idempotency-Key after its Retry-After, as a well-behaved publisher would.
    """

    def __init__(self, server, token: str, user_ids: list[int]) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.user_ids = server, token, user_ids
        self.statuses: list[int] = []
        self.published: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        for user_id in itertools.cycle(self.user_ids):
            if self.stopping.is_set():
                return
            body = json.dumps({"event": "Fault", "title": "db", "recipients": {"users": [user_id]}}).encode()
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
                "Idempotency-Key": str(uuid.uuid4()),
            }
            response = self.server.request("POST", "/api/notifications/", body=body, headers=headers)
            while response.status == 429 and not self.stopping.is_set():
                time.sleep(min(float(response.headers.get("Retry-After", 1)), 2.0))
                response = self.server.request("POST", "/api/notifications/", body=body, headers=headers)
            if response.status == 429:  # stopped while told to wait: nothing was published, nothing to count
                return
            self.statuses.append(response.status)
            if response.status == 201:
                self.published.append(json.loads(response.data)["id"])


def test_terminated_backends_cost_no_request_connect_or_ack(hub_server, redis_client):
    log_start = len(hub_server.log_text())
    users = UserFactory.create_batch(CLIENTS)
    publisher_user = make_publisher()
    clients = [AckingClient(hub_server, user) for user in users]
    publishers = [Publisher(hub_server, access_token(publisher_user), [user.pk for user in users]) for _ in range(2)]
    for thread in [*clients, *publishers]:
        thread.start()
    terminated = []
    reconnects = []
    try:
        for _ in range(TERMINATIONS):
            time.sleep(SECONDS_BETWEEN)
            terminated.append(terminate_other_backends())
            # A new connection right after: its session loads from the database the restart just emptied.
            with NativeClient.connect(hub_server, token=access_token(users[0])) as fresh:
                reconnects.append(fresh.start()[0]["type"])
    finally:
        for publisher in publishers:
            publisher.stopping.set()
            publisher.join(30)

    published = {notification_id for publisher in publishers for notification_id in publisher.published}
    statuses = [status for publisher in publishers for status in publisher.statuses]
    assert sum(terminated) > TERMINATIONS  # the server's pooled connections died, again and again
    assert published and all(status == 201 for status in statuses), sorted(set(statuses))
    assert reconnects == ["hello"] * TERMINATIONS
    # Every notification reaches its client live and every ack is written and confirmed.
    assert eventually(
        lambda: not Delivery.objects.filter(notification_id__in=published, acknowledged_at__isnull=True).exists(),
        timeout=30,
    )
    for client in clients:
        client.stopping.set()
        client.join(10)
        client.client.close()
    assert [client.closed_with for client in clients] == [None] * CLIENTS
    assert [client.errors for client in clients] == [[]] * CLIENTS
    assert set().union(*(client.confirmed for client in clients)) >= published
    log = hub_server.log_text()[log_start:]
    assert "Internal Server Error" not in log and "Traceback" not in log, log[-3000:]
