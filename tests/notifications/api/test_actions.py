"""POST /api/notifications/<id>/actions/<action>/ and actions declared at publish: the documented answers, and every
refusal changes nothing."""

import json

import pytest

from notifications.models import ActionCallback, ActionPerformance, Delivery, Notification
from tests.support.api import assert_error, client_for
from tests.support.factories import UserFactory
from workflow import services as workflow
from workflow.models import Document

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


@pytest.fixture
def document(requester, department, approvers):
    document = workflow.document_create(requester=requester, department=department, title="Q3", approvers=approvers)
    return workflow.document_submit(document=document, submitted_by=requester)


@pytest.fixture
def task_notification(document, approvers) -> Notification:
    return Notification.objects.get(event="NewTask", deliveries__recipient=approvers[0])


def perform(user, notification_id, action, body=None):
    return client_for(user).post(
        f"{URL}{notification_id}/actions/{action}/", json.dumps(body or {}), content_type="application/json"
    )


def unchanged(document: Document) -> tuple:
    document.refresh_from_db()
    return (
        document.status,
        list(document.steps.values_list("status", flat=True)),
        ActionPerformance.objects.count(),
        list(Delivery.objects.order_by("id").values_list("status", flat=True)),
    )


def test_approve_answers_the_outcome_and_a_repeat_answers_it_again(task_notification, approvers, document):
    response = perform(approvers[0], task_notification.pk, "approve", {"comment": "ok"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"notification_id", "action", "outcome", "performed_at", "already_performed"}
    assert (body["notification_id"], body["action"], body["outcome"], body["already_performed"]) == (
        str(task_notification.pk),
        "approve",
        "approved",
        False,
    )
    assert document.steps.get(order=1).status == "approved"

    again = perform(approvers[0], task_notification.pk, "approve")
    assert again.status_code == 200
    assert again.json() == {**body, "already_performed": True}
    assert ActionPerformance.objects.count() == 1


def test_the_inbox_shows_the_actions(task_notification, approvers):
    item = client_for(approvers[0]).get(f"{URL}{task_notification.pk}/").json()

    assert item["actions"] == [
        {"id": "approve", "label": "Approve", "requires_comment": False},
        {"id": "reject", "label": "Reject", "requires_comment": True},
    ]


@pytest.mark.parametrize(
    ("action", "body", "status", "code", "field"),
    [
        ("archive", {}, 400, "invalid", "action"),
        ("reject", {}, 400, "invalid", "comment"),
        ("reject", {"comment": "   "}, 400, "invalid", "comment"),
        ("reject", {"comment": "x" * 2001}, 400, "invalid", "comment"),
        ("approve", {"status": "approved"}, 400, "invalid", "status"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    task_notification, approvers, document, action, body, status, code, field
):
    before = unchanged(document)

    response = perform(approvers[0], task_notification.pk, action, body)

    assert field in assert_error(response, status, code)["fields"]
    assert unchanged(document) == before


def test_someone_elses_notification_is_a_404_and_changes_nothing(task_notification, approvers, requester, document):
    before = unchanged(document)

    for user in (approvers[1], requester):
        assert_error(perform(user, task_notification.pk, "approve"), 404, "not_found")
    assert_error(perform(approvers[0], "not-a-uuid", "approve"), 404, "not_found")
    assert unchanged(document) == before


def test_a_decision_on_a_decided_task_is_a_409_and_changes_nothing(task_notification, approvers, document):
    assert client_for(approvers[0]).post(f"/api/documents/{document.pk}/approve/").status_code == 200
    before = unchanged(document)

    body = assert_error(
        perform(approvers[0], task_notification.pk, "reject", {"comment": "no"}), 409, "invalid_transition"
    )

    assert body["message"] == "Too late for 'reject': done: the task was decided. Nothing was changed."
    assert unchanged(document) == before


def test_another_action_after_mine_is_a_409(task_notification, approvers, document):
    assert perform(approvers[0], task_notification.pk, "approve").status_code == 200
    before = unchanged(document)

    assert_error(perform(approvers[0], task_notification.pk, "reject", {"comment": "no"}), 409, "already_performed")
    assert unchanged(document) == before


class TestDeclaredByAPublisher:
    def publish(self, publisher, recipient, **fields):
        body = {"event": "InvoiceOverdue", "title": "Invoice 42 is overdue", "recipients": {"users": [recipient.pk]}}
        return client_for(publisher).post(URL, json.dumps({**body, **fields}), content_type="application/json")

    def test_a_publisher_without_a_callback_cannot_declare_actions(self, publisher):
        response = self.publish(publisher, UserFactory(), actions=[{"id": "pay", "label": "Pay now"}])

        assert "actions" in assert_error(response, 400, "invalid")["fields"]
        assert not Notification.objects.exists()

    def test_declared_actions_reach_the_inbox_and_are_performed_once(self, publisher):
        ActionCallback.objects.create(publisher=publisher, url="http://127.0.0.1:9/hook")
        recipient = UserFactory()
        actions = [{"id": "pay", "label": "Pay now"}, {"id": "dispute", "label": "Dispute", "requires_comment": True}]

        response = self.publish(publisher, recipient, actions=actions)

        assert response.status_code == 201, response.json()
        notification_id = response.json()["id"]
        item = client_for(recipient).get(f"{URL}{notification_id}/").json()
        assert item["actions"] == [
            {"id": "pay", "label": "Pay now", "requires_comment": False},
            {"id": "dispute", "label": "Dispute", "requires_comment": True},
        ]
        performed = perform(recipient, notification_id, "dispute", {"comment": "Paid last week"})
        assert (performed.status_code, performed.json()["outcome"]) == (200, "recorded")
        record = ActionPerformance.objects.get()
        assert (record.comment, record.callback_status) == ("Paid last week", "pending")
        assert client_for(recipient).get(f"{URL}{notification_id}/").json()["status"] == "read"

    @pytest.mark.parametrize(
        "actions",
        [
            [{"id": "Pay", "label": "Pay"}],
            [{"id": "pay now", "label": "Pay"}],
            [{"id": "pay", "label": ""}],
            [{"id": "pay", "label": "x" * 41}],
            [{"id": "pay", "label": "Pay"}, {"id": "pay", "label": "Pay again"}],
            [{"id": f"a{n}", "label": "A"} for n in range(4)],
            [{"id": "pay", "label": "Pay", "url": "http://evil"}],
            "pay",
        ],
    )
    def test_malformed_actions_are_a_400_and_publish_nothing(self, publisher, actions):
        ActionCallback.objects.create(publisher=publisher, url="http://127.0.0.1:9/hook")

        response = self.publish(publisher, UserFactory(), actions=actions)

        assert any(path.startswith("actions") for path in assert_error(response, 400, "invalid")["fields"])
        assert not Notification.objects.exists()

    def test_data_may_not_forge_the_actions_key(self, publisher):
        response = self.publish(publisher, UserFactory(), data={"Actions": []})

        assert "data" in assert_error(response, 400, "invalid")["fields"]
