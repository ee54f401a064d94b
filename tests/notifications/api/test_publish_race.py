"""Two requests with one Idempotency-Key at the same time publish once: the database decides, not a read."""

import json
import threading

import pytest
from django.db import connection, transaction

from notifications.models import Delivery, IdempotencyKey, Notification
from tests.support.api import client_for
from tests.support.factories import UserFactory
from tests.support.threads import wait_for_blocked_backends


def post_in_thread(publisher, body: dict, key: str, responses: list) -> threading.Thread:
    def post() -> None:
        try:
            response = client_for(publisher).post(
                "/api/notifications/",
                json.dumps(body),
                content_type="application/json",
                headers={"Idempotency-Key": key},
            )
            responses.append(response)
        finally:
            connection.close()  # each thread had its own database connection

    thread = threading.Thread(target=post)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_body", [True, False], ids=["same-body", "different-body"])
def test_concurrent_requests_with_one_key_publish_once(publisher, same_body):
    recipient = UserFactory()
    body = {"event": "Ping", "title": "first", "recipients": {"users": [recipient.pk]}}
    other_body = body if same_body else {**body, "title": "second"}
    responses: list = []

    # Hold back every notification insert, so both requests are inside their transactions at once:
    # the one that claimed the key waits for this lock, the other waits on the key's unique index.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {Notification._meta.db_table} IN EXCLUSIVE MODE")
        threads = [
            post_in_thread(publisher, body, "same-key", responses),
            post_in_thread(publisher, other_body, "same-key", responses),
        ]
        wait_for_blocked_backends(cursor, 2)
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == ([200, 201] if same_body else [201, 409])
    assert Notification.objects.count() == 1
    assert Delivery.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
    if same_body:
        first, second = (response.json() for response in responses)
        assert first == second


@pytest.mark.django_db(transaction=True)
def test_a_single_publish_and_a_batch_item_with_one_key_at_the_same_time_publish_once(publisher):
    recipient = UserFactory()
    body = {"event": "Ping", "title": "first", "recipients": {"users": [recipient.pk]}}
    responses: list = []

    def post_batch() -> None:
        try:
            batch = {"notifications": [{**body, "idempotency_key": "same-key"}]}
            response = client_for(publisher).post("/api/notifications/batch/", batch, format="json")
            responses.append(response)
        finally:
            connection.close()

    # As above: both inside their transactions at once, one holding the key's claim, the other waiting on it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {Notification._meta.db_table} IN EXCLUSIVE MODE")
        threads = [post_in_thread(publisher, body, "same-key", responses), threading.Thread(target=post_batch)]
        threads[1].start()
        wait_for_blocked_backends(cursor, 2)
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(
        response.json()["results"][0]["status"] if "results" in response.json() else response.status_code
        for response in responses
    )
    assert statuses == [200, 201]
    assert Notification.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
