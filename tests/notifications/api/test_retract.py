"""A publisher's `subject` and POST /api/notifications/<id>/retract/: its own only, everyone else a 404."""

import json
import uuid

import pytest

from notifications.models import Delivery, Notification
from tests.support.api import assert_error, client_for, make_publisher
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


def publish(client, **fields):
    body = {"event": "InvoiceOverdue", "title": "Invoice 42 is overdue", "recipients": {"users": [fields.pop("to")]}}
    return client.post(URL, json.dumps({**body, **fields}), content_type="application/json")


def retract(user, notification_id):
    return client_for(user).post(f"{URL}{notification_id}/retract/")


class TestSubject:
    def test_a_subject_is_kept_and_shown_to_the_publisher(self, publisher):
        recipient = UserFactory()
        response = publish(client_for(publisher), to=recipient.pk, subject="invoice:42")

        assert response.status_code == 201, response.json()
        notification_id = response.json()["id"]
        assert Notification.objects.get(pk=notification_id).subject == "invoice:42"
        summary = client_for(publisher).get(f"{URL}{notification_id}/deliveries/").json()["notification"]
        assert (summary["subject"], summary["resolution"], summary["resolved_at"]) == ("invoice:42", "", None)

    @pytest.mark.parametrize("subject", ["x" * 129, "line\nbreak", "tab\there", None])
    def test_a_bad_subject_is_a_400_naming_the_field(self, publisher, subject):
        response = publish(client_for(publisher), to=UserFactory().pk, subject=subject)

        assert "subject" in assert_error(response, 400, "invalid")["fields"]
        assert not Notification.objects.exists()


class TestRetract:
    def test_the_publisher_retracts_and_the_recipient_sees_it_resolved(self, publisher):
        recipient = UserFactory()
        notification_id = publish(client_for(publisher), to=recipient.pk).json()["id"]

        response = retract(publisher, notification_id)

        assert response.status_code == 200, response.json()
        body = response.json()
        assert (body["id"], body["resolution"]) == (notification_id, "retracted")
        assert body["resolved_at"] is not None
        assert body["by_status"]["resolved"] == 1
        rows = client_for(publisher).get(f"{URL}{notification_id}/deliveries/").json()["results"]
        assert [(row["status"], row["resolved_at"] is not None) for row in rows] == [("resolved", True)]
        item = client_for(recipient).get(f"{URL}{notification_id}/").json()
        assert (item["status"], item["unread"], item["resolution"]) == ("resolved", False, "retracted")
        assert client_for(recipient).get(f"{URL}unread-count/").json() == {"unread_count": 0}
        # Again: nothing changes, still a 200.
        again = retract(publisher, notification_id)
        assert again.status_code == 200
        assert again.json()["resolved_at"] == body["resolved_at"]

    @pytest.mark.parametrize("who", ["recipient", "another publisher", "staff"])
    def test_anyone_else_gets_404_and_nothing_changes(self, publisher, who):
        recipient = UserFactory()
        notification_id = publish(client_for(publisher), to=recipient.pk).json()["id"]
        caller = {
            "recipient": recipient,
            "another publisher": make_publisher(),
            "staff": UserFactory(is_staff=True),
        }[who]

        assert_error(retract(caller, notification_id), 404, "not_found")
        assert Delivery.objects.get(notification_id=notification_id).status != "resolved"

    @pytest.mark.parametrize("notification_id", [uuid.uuid4(), "not-a-uuid"])
    def test_an_unknown_id_is_404(self, publisher, notification_id):
        assert_error(retract(publisher, notification_id), 404, "not_found")

    def test_needs_a_user(self):
        assert_error(client_for().post(f"{URL}{uuid.uuid4()}/retract/"), 401, "not_authenticated")
