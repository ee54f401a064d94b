"""notification_publish: recipients, de-duplication, bulk fan-out and refusals."""

import asyncio
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import presence
from notifications.errors import NotificationError, UnknownRecipients
from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import notification_publish
from tests.support.factories import DepartmentFactory, UserFactory, add_members

pytestmark = pytest.mark.django_db


def publish(**kwargs):
    kwargs.setdefault("event", "Announcement")
    kwargs.setdefault("title", "Hello")
    return notification_publish(**kwargs)


def test_user_targeted_directly_and_through_two_departments_gets_one_delivery():
    finance, legal = DepartmentFactory(), DepartmentFactory()
    both, only_finance, only_legal, direct = UserFactory.create_batch(4)
    add_members(finance, both, only_finance)
    add_members(legal, both, only_legal)

    notification = publish(user_ids=[both.pk, direct.pk], department_ids=[finance.pk, legal.pk])

    recipients = sorted(notification.deliveries.values_list("recipient_id", flat=True))
    assert recipients == sorted([both.pk, only_finance.pk, only_legal.pk, direct.pk])
    assert notification.recipient_count == 4
    assert set(notification.deliveries.values_list("status", flat=True)) == {Delivery.Status.PENDING}


def publish_to_department_and_dispatch(size: int, capture_on_commit) -> tuple[Notification, list[str]]:
    """Publish to a department of `size` members, half of them online, dispatch; the statements run."""
    department = DepartmentFactory()
    members = UserFactory.create_batch(size)
    add_members(department, *members)
    for member in members[::2]:
        asyncio.run(presence.connection_alive(member.pk, f"test-{member.pk}", department_ids=[department.pk]))
    with CaptureQueriesContext(connection) as queries, capture_on_commit(execute=True):
        notification = publish(department_ids=[department.pk])
    return notification, [query["sql"] for query in queries]


def test_department_fan_out_and_dispatch_take_the_same_statements_whatever_the_size(
    redis_client, django_capture_on_commit_callbacks
):
    small, small_statements = publish_to_department_and_dispatch(4, django_capture_on_commit_callbacks)
    large, large_statements = publish_to_department_and_dispatch(60, django_capture_on_commit_callbacks)

    assert len(large_statements) == len(small_statements)
    assert sum('INSERT INTO "notifications_delivery"' in sql for sql in large_statements) == 1
    for notification, size in ((small, 4), (large, 60)):
        assert notification.recipient_count == size
        statuses = sorted(notification.deliveries.values_list("status", flat=True))
        assert statuses == [Delivery.Status.PENDING] * (size // 2) + [Delivery.Status.SENT] * (size // 2)
        outcomes = sorted(
            DeliveryAttempt.objects.filter(delivery__notification=notification).values_list("outcome", flat=True)
        )
        assert outcomes == [DeliveryAttempt.Outcome.NO_CONNECTION] * (size // 2) + [DeliveryAttempt.Outcome.SENT] * (
            size // 2
        )


def test_inactive_users_get_no_delivery():
    department = DepartmentFactory()
    active, inactive = UserFactory(), UserFactory(is_active=False)
    add_members(department, active, inactive)

    notification = publish(user_ids=[inactive.pk], department_ids=[department.pk])

    assert list(notification.deliveries.values_list("recipient_id", flat=True)) == [active.pk]


def test_unknown_recipients_are_listed_and_nothing_is_created():
    user = UserFactory()
    with pytest.raises(UnknownRecipients) as caught:
        publish(user_ids=[user.pk, 999_999], department_ids=[888_888])

    assert caught.value.user_ids == [999_999]
    assert caught.value.department_ids == [888_888]
    assert "999999" in caught.value.message
    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "has space"}, "Invalid event name"),
        ({"event": "9Starts"}, "Invalid event name"),
        ({"event": "x" * 65}, "Invalid event name"),
        ({"title": " "}, "needs a title"),
        ({"data": ["not", "an", "object"]}, "JSON object"),
        ({"priority": "critical"}, "Unknown priority"),
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "in the past"),
        ({"user_ids": [], "department_ids": []}, "at least one user or department"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_created(kwargs, message):
    kwargs.setdefault("user_ids", [UserFactory().pk])
    with pytest.raises(NotificationError, match=message):
        publish(**kwargs)
    assert not Notification.objects.exists()


def test_publish_keeps_every_field():
    user = UserFactory()
    publisher = UserFactory()
    expires = timezone.now() + timedelta(hours=1)

    notification = publish(
        event="Ops.Maintenance",
        title="Tonight",
        body="Down 22:00–23:00",
        data={"window": 60, "nested": {"ok": True}},
        user_ids=[user.pk],
        priority="low",
        expires_at=expires,
        published_by_id=publisher.pk,
    )

    stored = Notification.objects.get(pk=notification.pk)
    assert (stored.event, stored.title, stored.body) == ("Ops.Maintenance", "Tonight", "Down 22:00–23:00")
    assert stored.data == {"window": 60, "nested": {"ok": True}}
    assert stored.priority == "low"
    assert stored.expires_at == expires
    assert stored.published_by_id == publisher.pk
    assert not stored.is_expired()
