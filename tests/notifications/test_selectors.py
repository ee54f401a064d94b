"""Read-side queries that the API's hot path relies on: they must answer what the ORM would."""

import pytest
from django.contrib.auth.models import Group, Permission

from notifications import selectors
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def grant(user, *, directly=(), through_group=()) -> None:
    for codename in directly:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    if through_group:
        group = Group.objects.create(name=f"group-of-{user.username}")
        group.permissions.add(*Permission.objects.filter(codename__in=through_group))
        user.groups.add(group)


@pytest.mark.parametrize(
    ("attributes", "directly", "through_group"),
    [
        ({}, (), ()),
        ({}, ("publish_notification",), ()),
        ({}, (), ("publish_notification",)),
        ({}, ("publish_notification",), ("publish_notification",)),
        ({}, ("view_notification", "add_delivery"), ("change_notification",)),  # other permissions only
        ({"is_staff": True}, (), ()),
        ({"is_superuser": True}, (), ()),
        ({"is_active": False}, ("publish_notification",), ("publish_notification",)),
        ({"is_active": False, "is_staff": True}, (), ()),
        ({"is_active": False, "is_superuser": True}, (), ()),
        ({"is_staff": True}, (), ("view_notification",)),
    ],
)
def test_user_may_publish_answers_as_has_perm(attributes, directly, through_group):
    user = UserFactory(**attributes)
    grant(user, directly=directly, through_group=through_group)
    fresh = type(user).objects.get(pk=user.pk)  # no permission cache from granting

    expected = fresh.has_perm("notifications.publish_notification")
    assert selectors.user_may_publish(fresh) is expected


def test_being_staff_does_not_grant_publishing():
    assert selectors.user_may_publish(UserFactory(is_staff=True)) is False


def test_another_users_permission_does_not_count():
    holder, other = UserFactory(), UserFactory()
    grant(holder, directly=("publish_notification",), through_group=("publish_notification",))

    assert selectors.user_may_publish(holder) is True
    assert selectors.user_may_publish(other) is False


def test_inbox_summary_counts_unread_and_unacknowledged_as_their_own_selectors_do():
    from datetime import timedelta

    from django.utils import timezone

    from notifications.models import Delivery
    from notifications.services import delivery_acknowledge, delivery_mark_read, notification_publish

    user, other = UserFactory(), UserFactory()
    published = [notification_publish(event="Ping", title=str(number), user_ids=[user.pk]) for number in range(5)]
    notification_publish(event="Ping", title="not mine", user_ids=[other.pk])
    delivery_acknowledge(user_id=user.pk, notification_id=published[0].pk)  # acknowledged, still unread
    delivery_mark_read(user_id=user.pk, notification_id=published[1].pk)  # read (and so acknowledged)
    expiring = notification_publish(
        event="Ping", title="soon gone", user_ids=[user.pk], expires_at=timezone.now() + timedelta(seconds=30)
    )
    type(expiring).objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    later = timezone.now() + timedelta(hours=1)
    notification_publish(event="Ping", title="later", user_ids=[user.pk], expires_at=later)

    summary = selectors.inbox_summary(user.pk)

    assert summary == selectors.InboxSummary(unread=5, unacknowledged=4)
    assert summary.unread == selectors.unread_count(user.pk)
    assert summary.unacknowledged == selectors.deliveries_to_replay(user.pk).count()
    assert Delivery.objects.filter(recipient=user).count() == 7  # the expired one exists but counts nowhere


def test_connect_summary_reads_the_user_departments_and_inbox_summary_as_their_own_lookups_do():
    from django.contrib.auth import get_user_model

    from notifications.services import delivery_acknowledge, notification_publish
    from tests.support.factories import DepartmentFactory, add_members
    from workflow.selectors import department_ids_of

    user, other, alone = UserFactory(first_name="Ada", email="ada@example.com"), UserFactory(), UserFactory()
    later, earlier = DepartmentFactory(), DepartmentFactory()
    add_members(later, user, other)
    add_members(earlier, user)  # joined second, lower id: the summary lists ids in order, as department_ids_of does
    published = [notification_publish(event="Ping", title=str(number), user_ids=[user.pk]) for number in range(3)]
    delivery_acknowledge(user_id=user.pk, notification_id=published[0].pk)
    notification_publish(event="Ping", title="not mine", user_ids=[other.pk])

    summary = selectors.connect_summary(user.pk)

    assert summary is not None
    loaded = get_user_model().objects.get(pk=user.pk)
    assert [getattr(summary.user, f.attname) for f in loaded._meta.concrete_fields] == [
        getattr(loaded, f.attname) for f in loaded._meta.concrete_fields
    ]
    assert summary.user.get_username() == user.username and summary.user.is_active
    assert summary.department_ids == department_ids_of(user.pk) == sorted([later.pk, earlier.pk])
    assert summary.inbox == selectors.inbox_summary(user.pk) == selectors.InboxSummary(unread=3, unacknowledged=2)
    assert selectors.connect_summary(alone.pk) == selectors.ConnectSummary(
        user=alone, department_ids=[], inbox=selectors.InboxSummary(unread=0, unacknowledged=0)
    )
    assert selectors.connect_summary(alone.pk + other.pk + user.pk) is None  # no such user
