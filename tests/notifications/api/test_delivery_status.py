"""GET /api/notifications/<id>/deliveries/: each recipient's state and attempts, for the publisher and staff."""

import json

import pytest
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, Device
from notifications.services import delivery_acknowledge, delivery_mark_read, delivery_push
from tests.support.api import assert_error, client_for, make_publisher
from tests.support.factories import DepartmentFactory, UserFactory, add_members

pytestmark = pytest.mark.django_db


@pytest.fixture
def department_with_members():
    department = DepartmentFactory(code="ops")
    members = [UserFactory(username=f"ops{index}") for index in range(3)]
    add_members(department, *members)
    return department, members


def publish_to_department(publisher, code: str) -> str:
    response = client_for(publisher).post(
        "/api/notifications/",
        json.dumps({"event": "Outage", "title": "DB down", "recipients": {"departments": [code]}}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_publisher_sees_each_members_state_and_attempts(publisher, department_with_members):
    _, (read_it, acked_it, offline) = department_with_members
    notification_id = publish_to_department(publisher, "ops")
    delivery_mark_read(user_id=read_it.pk, notification_id=notification_id)
    delivery_acknowledge(user_id=acked_it.pk, notification_id=notification_id)
    offline_delivery = Delivery.objects.get(notification_id=notification_id, recipient=offline)
    device = Device.objects.create(user=offline, token="t-1", platform="android", app_install_id="i-1")
    DeliveryAttempt.objects.create(delivery=offline_delivery, channel="ws", outcome="no_connection")
    DeliveryAttempt.objects.create(
        delivery=offline_delivery, channel="fcm", outcome="device_gone", device=device, error="UNREGISTERED"
    )
    Delivery.objects.filter(pk=offline_delivery.pk).update(
        status="failed", failure_reason="no_devices", last_error="UNREGISTERED"
    )

    response = client_for(publisher).get(f"/api/notifications/{notification_id}/deliveries/")

    assert response.status_code == 200
    body = response.json()
    assert body["notification"]["id"] == notification_id
    assert body["notification"]["recipient_count"] == 3
    assert body["notification"]["published_by"]["username"] == publisher.username
    assert body["notification"]["by_status"] == {
        "pending": 0,
        "sent": 0,
        "acknowledged": 1,
        "read": 1,
        "pushed": 0,
        "failed": 1,
        "resolved": 0,
    }
    assert body["notification"]["pushed"] == 0
    rows = {row["recipient"]["username"]: row for row in body["results"]}
    assert rows["ops0"]["status"] == "read" and rows["ops0"]["read_at"] is not None
    assert rows["ops1"]["status"] == "acknowledged" and rows["ops1"]["acknowledged_at"] is not None
    why_not = rows["ops2"]
    assert (why_not["status"], why_not["failure_reason"], why_not["last_error"]) == (
        "failed",
        "no_devices",
        "UNREGISTERED",
    )
    assert [(attempt["channel"], attempt["outcome"]) for attempt in why_not["attempt_log"]] == [
        ("ws", "no_connection"),
        ("fcm", "device_gone"),
    ]
    assert why_not["attempt_log"][1]["device"] == {"id": device.pk, "platform": "android", "active": True}
    assert why_not["attempt_log"][1]["error"] == "UNREGISTERED"
    assert why_not["attempt_log"][0]["device"] is None


def test_filters_by_username_recipient_and_status(publisher, department_with_members):
    _, members = department_with_members
    notification_id = publish_to_department(publisher, "ops")
    delivery_acknowledge(user_id=members[1].pk, notification_id=notification_id)
    client = client_for(publisher)
    url = f"/api/notifications/{notification_id}/deliveries/"

    def usernames(**params):
        return [row["recipient"]["username"] for row in client.get(url, params).json()["results"]]

    assert usernames(username="ops2") == ["ops2"]
    assert usernames(recipient=members[0].pk) == ["ops0"]
    assert usernames(status="pending") == ["ops0", "ops2"]
    assert usernames(status="acknowledged") == ["ops1"]
    assert usernames(page_size=2) == ["ops0", "ops1"]
    assert_error(client.get(url, {"status": "lost"}), 400, "invalid")
    assert_error(client.get(url, {"recipient": "ops0"}), 400, "invalid")


def test_staff_may_look(publisher, department_with_members):
    notification_id = publish_to_department(publisher, "ops")
    staff = UserFactory(is_staff=True)
    assert client_for(staff).get(f"/api/notifications/{notification_id}/deliveries/").status_code == 200


def test_other_publishers_and_recipients_get_404(publisher, department_with_members):
    _, members = department_with_members
    notification_id = publish_to_department(publisher, "ops")
    url = f"/api/notifications/{notification_id}/deliveries/"
    assert_error(client_for(make_publisher()).get(url), 404, "not_found")
    assert_error(client_for(members[0]).get(url), 404, "not_found")


def test_a_push_the_log_backend_simulated_says_so(publisher, department_with_members, settings):
    settings.NOTIFY_PUSH_BACKEND = "log"
    _, (member, *_others) = department_with_members
    notification_id = publish_to_department(publisher, "ops")
    Device.objects.create(user=member, token="t-sim", platform="ios", app_install_id="i-sim")
    delivery = Delivery.objects.get(notification_id=notification_id, recipient=member)
    assert delivery_push(delivery_id=delivery.pk) == "pushed (simulated)"

    response = client_for(publisher).get(f"/api/notifications/{notification_id}/deliveries/?username={member.username}")

    [row] = response.json()["results"]
    assert (row["status"], row["push_simulated"]) == ("pushed", True)
    assert [(attempt["channel"], attempt["outcome"]) for attempt in row["attempt_log"]] == [("fcm", "simulated")]


def test_a_push_acknowledged_late_still_counts_as_pushed_in_the_summary(publisher, department_with_members):
    _, (pushed_then_acked, pushed, _) = department_with_members
    notification_id = publish_to_department(publisher, "ops")
    Delivery.objects.filter(notification_id=notification_id, recipient__in=[pushed_then_acked, pushed]).update(
        status="pushed", pushed_at=timezone.now()
    )
    delivery_acknowledge(user_id=pushed_then_acked.pk, notification_id=notification_id)

    body = client_for(publisher).get(f"/api/notifications/{notification_id}/deliveries/").json()

    assert body["notification"]["by_status"]["acknowledged"] == 1
    assert body["notification"]["by_status"]["pushed"] == 1
    assert body["notification"]["pushed"] == 2
    rows = {row["recipient"]["username"]: row for row in body["results"]}
    late = rows[pushed_then_acked.username]
    assert late["status"] == "acknowledged" and late["pushed_at"] is not None
