"""core/database.py: a COMMIT whose connection dies is checked, neither lost nor repeated."""

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from core.database import atomic_with_verified_commit
from notifications.models import Delivery, Notification
from notifications.services import notification_publish_requested
from tests.support.api import make_publisher
from tests.support.commits import first_commit_lost
from tests.support.factories import UserFactory
from tests.support.servers import database_url

pytestmark = pytest.mark.django_db(transaction=True)


def kill_this_connection() -> None:
    """Terminate this thread's backend from another connection, as a PostgreSQL restart would, before COMMIT."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


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


def test_a_publish_whose_commit_landed_unseen_is_kept_once_and_handed_to_the_sweep():
    user, publisher = UserFactory(), make_publisher()
    with first_commit_lost(landed=True):
        result = notification_publish_requested(
            published_by_id=publisher.pk, event="Landed", title="t", users=[user.pk], idempotency_key="k-1"
        )

    assert Notification.objects.count() == 1 and result.notification.pk == Notification.objects.get().pk
    delivery = Delivery.objects.get(notification=result.notification)
    assert delivery.status in Delivery.OPEN_STATUSES
    assert delivery.next_attempt_at <= timezone.now()  # its dispatch was lost with the connection: the sweep's now
