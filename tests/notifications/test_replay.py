"""Replay pages: oldest first, keyset-paginated, open deliveries recorded as sent."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Delivery
from notifications.services import deliveries_replay_page, delivery_acknowledge, notification_publish
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_pages_walk_every_unacknowledged_notification_oldest_first():
    user, other = UserFactory(), UserFactory()
    published = [notification_publish(event="Ping", title=str(number), user_ids=[user.pk]) for number in range(5)]
    notification_publish(event="Ping", title="not mine", user_ids=[other.pk])
    delivery_acknowledge(user_id=user.pk, notification_id=published[1].pk)

    pages, cursor = [], None
    while True:
        page = deliveries_replay_page(user_id=user.pk, after=cursor, limit=2)
        pages.append([payload["title"] for payload in page.notifications])
        if page.cursor is None:
            break
        cursor = page.cursor

    assert pages == [["0", "2"], ["3", "4"], []]


def test_open_deliveries_on_a_page_become_sent_and_others_keep_their_status():
    user = UserFactory()
    pending, pushed = (notification_publish(event="Ping", title="t", user_ids=[user.pk]) for _ in range(2))
    Delivery.objects.filter(notification=pushed).update(status=Delivery.Status.PUSHED)

    page = deliveries_replay_page(user_id=user.pk)

    assert [payload["id"] for payload in page.notifications] == [str(pending.pk), str(pushed.pk)]
    assert Delivery.objects.get(notification=pending).status == Delivery.Status.SENT
    assert Delivery.objects.get(notification=pushed).status == Delivery.Status.PUSHED


def test_a_page_records_all_its_sends_in_one_statement_and_only_for_its_user():
    user, other = UserFactory(), UserFactory()
    published = [
        notification_publish(event="Ping", title=str(number), user_ids=[user.pk, other.pk]) for number in range(3)
    ]

    with CaptureQueriesContext(connection) as queries:
        deliveries_replay_page(user_id=user.pk)

    # one UPDATE (with its attempt log) for the whole page, not one per notification
    assert [query["sql"].lstrip().split()[0] for query in queries if "UPDATE" in query["sql"]] == ["WITH"]

    mine = Delivery.objects.filter(recipient=user)
    assert sorted(mine.values_list("status", "attempts")) == [(Delivery.Status.SENT, 1)] * len(published)
    assert set(Delivery.objects.filter(recipient=other).values_list("status", flat=True)) == {Delivery.Status.PENDING}
    assert all(delivery.attempt_log.count() == 1 for delivery in mine)
