"""The dashboard page and its JSON: staff only, the admin's index, periods, numbers, failure rows to the explanation."""

from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Delivery
from notifications.services import notification_publish
from tests.support.factories import UserFactory

# admin_client: pytest-django's, signed in as a superuser; presence reads the test Redis (emptied).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_client")]


@pytest.fixture
def failed_delivery():
    carol = UserFactory(username="carol", first_name="Carol", last_name="Jones")
    notification = notification_publish(event="NewTask", title="Approve the budget", user_ids=[carol.pk])
    Delivery.objects.filter(notification=notification).update(
        status=Delivery.Status.FAILED, failure_reason=Delivery.FailureReason.NO_DEVICES, failed_at=timezone.now()
    )
    return Delivery.objects.get(notification=notification)


def test_the_admin_index_is_the_dashboard_with_the_app_list(admin_client, failed_delivery):
    page = admin_client.get(reverse("admin:index"))
    assert page.status_code == 200
    assert page.templates[0].name == "admin/console/dashboard.html"
    html = page.content.decode()
    assert "Delivery dashboard" in html
    assert "console-series-chart" in html
    assert reverse("admin:notifications_delivery_changelist") in html  # the app list is still there


def test_a_failure_row_links_to_its_explanation(admin_client, failed_delivery):
    html = admin_client.get(reverse("admin:console-dashboard")).content.decode()
    why = (
        reverse("admin:console-why")
        + "?"
        + urlencode({"user": "carol", "notification": failed_delivery.notification_id})
    )
    assert why.replace("&", "&amp;") in html
    assert "Carol Jones" in html and "Approve the budget" in html and "No active device to push to" in html
    assert "?status__exact=failed" in html


def test_non_staff_are_sent_to_the_admin_sign_in(client, redis_client):
    client.force_login(UserFactory(username="dora"))
    for name in ("admin:index", "admin:console-dashboard", "admin:console-dashboard-data"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("name", ["admin:console-dashboard", "admin:console-dashboard-data", "admin:index"])
def test_an_unknown_period_is_refused_with_the_choices(admin_client, name):
    response = admin_client.get(reverse(name), {"period": "month"})
    assert response.status_code == 400
    assert "choose one of hour, day, week" in response.content.decode()


def test_the_json_has_every_number_of_the_page(admin_client, failed_delivery):
    numbers = admin_client.get(reverse("admin:console-dashboard-data"), {"period": "hour"}).json()
    assert numbers["period"] == "hour"
    assert numbers["published"] == 1
    assert numbers["deliveries"]["failed"] == 1
    assert numbers["failed_by_reason"] == [{"reason": "no_devices", "label": "No active device to push to", "count": 1}]
    assert [row["outcome"] for row in numbers["push_outcomes"]] == [
        "accepted",
        "simulated",
        "retry",
        "rejected",
        "device_gone",
    ]
    assert set(numbers["backlog"]) == {"open", "pending", "sent", "overdue", "sweep_lag"}
    assert set(numbers["to_ack"]) == {"p50", "p95", "p99"}
    assert len(numbers["series"]["labels"]) == len(numbers["series"]["published"]) == 13
    assert sum(numbers["series"]["failed"]) == 1
    assert numbers["recent_failures"][0]["recipient"] == "Carol Jones"
    assert numbers["presence"]["connections"] == 0


@pytest.mark.parametrize("period", ["hour", "day", "week"])
def test_the_query_count_does_not_grow_with_failures(admin_client, period, django_assert_max_num_queries):
    users = [UserFactory() for _ in range(12)]
    notification = notification_publish(event="NewTask", title="Everyone", user_ids=[user.pk for user in users])
    Delivery.objects.filter(notification=notification).update(
        status=Delivery.Status.FAILED, failure_reason=Delivery.FailureReason.EXPIRED, failed_at=timezone.now()
    )
    # The session and its user, then the six statements of the numbers, whatever the number of rows.
    with django_assert_max_num_queries(8):
        numbers = admin_client.get(reverse("admin:console-dashboard-data"), {"period": period}).json()
    assert len(numbers["recent_failures"]) == 10
