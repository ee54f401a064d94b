"""core/database.py, and the API publish's one statement: a COMMIT whose connection dies is checked, neither lost
nor repeated."""

import pytest
from django.db import OperationalError
from django.utils import timezone

from core.database import atomic_with_verified_commit
from notifications.models import Delivery, Notification
from notifications.services import notification_publish_requested, publish_request
from tests.support.api import make_publisher
from tests.support.commits import kill_this_connection
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_commit_that_did_not_land_runs_the_work_once_more():
    attempts = []

    def work() -> Notification:
        notification = Notification.objects.create(event="Once", title=f"attempt {len(attempts)}")
        attempts.append(notification.pk)
        if len(attempts) == 1:
            kill_this_connection()  # its COMMIT fails: the first attempt never lands
        return notification

    result = atomic_with_verified_commit(
        work, landed=lambda n: Notification.objects.filter(pk=n.pk).exists(), after_lost_commit=lambda n: None
    )

    assert len(attempts) == 2
    assert list(Notification.objects.values_list("pk", flat=True)) == [result.pk] == [attempts[1]]


def test_a_publish_whose_statement_landed_unseen_is_kept_once_and_handed_to_the_sweep(monkeypatch):
    user, publisher = UserFactory(), make_publisher()
    real_statement = publish_request._publish_statement

    def written_then_lose_the_answer(**kwargs) -> bool:
        real_statement(**kwargs)  # in autocommit: it has committed
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(publish_request, "_publish_statement", written_then_lose_the_answer)
    result = notification_publish_requested(
        published_by_id=publisher.pk, event="Landed", title="t", users=[user.pk], idempotency_key="k-1"
    )

    assert Notification.objects.count() == 1 and result.notification.pk == Notification.objects.get().pk
    delivery = Delivery.objects.get(notification=result.notification)
    assert delivery.status in Delivery.OPEN_STATUSES
    assert delivery.next_attempt_at <= timezone.now()  # its dispatch was lost with the connection: the sweep's now


def test_a_publish_whose_connection_died_before_its_statement_runs_it_once_more(monkeypatch):
    user, publisher = UserFactory(), make_publisher()
    real_statement = publish_request._publish_statement
    calls = []

    def die_first(**kwargs) -> bool:
        calls.append(1)
        if len(calls) == 1:
            kill_this_connection()  # as a PostgreSQL restart would: the statement fails, nothing landed
        return real_statement(**kwargs)

    monkeypatch.setattr(publish_request, "_publish_statement", die_first)
    result = notification_publish_requested(published_by_id=publisher.pk, event="Again", title="t", users=[user.pk])

    assert len(calls) == 2
    assert list(Notification.objects.values_list("pk", flat=True)) == [result.notification.pk]
    assert Delivery.objects.get(notification=result.notification).recipient_id == user.pk
