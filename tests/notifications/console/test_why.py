"""The "why wasn't U notified?" page (notifications/console/why.py) through Django's test client."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.console.times import time_of_day
from notifications.models import Delivery
from notifications.services import delivery_push, notification_publish
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

WHY = reverse("admin:console-why")


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def bob(redis_client):
    return UserFactory(username="bob", first_name="Bob", last_name="Smith")


def failed_no_devices(user) -> Delivery:
    notification = notification_publish(event="DocumentApproved", title="Travel approval", user_ids=[user.pk])
    delivery = Delivery.objects.get(notification=notification)
    assert delivery_push(delivery_id=delivery.pk) == "failed: no_devices"
    return Delivery.objects.get(pk=delivery.pk)


def test_non_staff_are_sent_to_the_admin_sign_in(client):
    client.force_login(UserFactory(is_staff=False))

    response = client.get(WHY, {"user": "bob"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_empty_form_offers_the_last_seven_days(admin_client, bob):
    response = admin_client.get(WHY)

    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["until"] - form.initial["since"] == timedelta(days=7)
    assert '<option value="bob">' in response.content.decode()


def test_the_link_with_user_and_notification_answers_in_words(admin_client, bob):
    delivery = failed_no_devices(bob)

    response = admin_client.get(WHY, {"user": "bob", "notification": str(delivery.notification_id)})

    assert response.status_code == 200
    page = response.content.decode()
    failed_at = time_of_day(delivery.failed_at)
    assert (
        "Bob Smith (bob) was not notified: offline (last seen: unknown); there was no active device to push to "
        f"(failed at {failed_at}): they have never registered a device for push."
    ) in page
    assert "Offline (last seen: unknown)." in page
    assert "No device registered for push." in page
    assert reverse("admin:notifications_notification_change", args=[delivery.notification_id]) in page
    assert reverse("admin:notifications_delivery_change", args=[delivery.pk]) in page


def test_a_notification_outside_the_default_range_is_still_found_by_its_id(admin_client, bob):
    delivery = failed_no_devices(bob)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(days=30))

    response = admin_client.get(WHY, {"user": "bob", "notification": str(delivery.notification_id)})

    assert [item.delivery.pk for item in response.context["explained"]] == [delivery.pk]


def test_a_user_without_a_delivery_of_the_notification_is_told_why(admin_client, bob):
    other = UserFactory()
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[other.pk])

    response = admin_client.get(WHY, {"user": "bob", "notification": str(notification.pk)})

    assert response.status_code == 200
    assert "Bob Smith (bob) had no delivery of “Approve”: it went to 1 other recipient" in response.content.decode()


def test_deliveries_in_a_range_by_event_newest_first_at_most_fifty(admin_client, bob, monkeypatch):
    monkeypatch.setattr("notifications.console.why.MAX_DELIVERIES", 2)
    for title in ("First", "Second", "Third"):
        notification_publish(event="NewTask", title=title, user_ids=[bob.pk])
    notification_publish(event="Other", title="Not this one", user_ids=[bob.pk])

    response = admin_client.get(WHY, {"user": "bob", "notification": "NewTask"})

    assert [item.delivery.notification.title for item in response.context["explained"]] == ["Third", "Second"]
    assert "Only the newest 2 are shown" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"user": "nobody"}, "No user named “nobody”."),
        ({"user": "bob", "notification": "not a uuid!"}, "Give a notification id (a UUID) or an event name."),
        ({"user": "bob", "notification": "6f1c8a2e-0000-4000-8000-000000000000"}, "No notification"),
        ({"user": "bob", "since": "yesterday"}, "Enter a valid date/time."),
        ({"user": "bob", "since": "2026-12-05T10:00", "until": "2026-12-01T10:00"}, "“From” must come before “To”."),
        ({"user": ""}, "This field is required."),
    ],
)
def test_bad_input_is_a_form_error_never_a_500(admin_client, bob, params, error):
    response = admin_client.get(WHY, params)

    assert response.status_code == 400
    assert error in response.content.decode()
