"""POST /api/documents/<id>/withdraw/: the requester's, in review only, the same error shapes as the other actions."""

import pytest

from notifications.models import Delivery
from tests.support.api import assert_error, client_for
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow import services

pytestmark = pytest.mark.django_db
URL = "/api/documents/"


def withdraw(user, document_id):
    return client_for(user).post(f"{URL}{document_id}/withdraw/", "{}", content_type="application/json")


@pytest.fixture
def in_review(requester, department, approvers):
    document = services.document_create(requester=requester, department=department, title="Budget", approvers=approvers)
    return services.document_submit(document=document, submitted_by=requester)


def test_the_requester_withdraws_and_the_approvers_new_task_is_resolved(in_review, requester, approvers):
    response = withdraw(requester, in_review.pk)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "withdrawn"
    assert response.json()["current_step"] is None
    assert [step["status"] for step in response.json()["steps"]] == ["cancelled", "cancelled"]
    delivery = Delivery.objects.get(recipient=approvers[0], notification__event="NewTask")
    assert delivery.status == "resolved"
    inbox = client_for(approvers[0]).get("/api/notifications/").json()["results"]
    assert [(item["status"], item["unread"], item["resolution"]) for item in inbox] == [
        ("resolved", False, "withdrawn")
    ]
    assert inbox[0]["resolved_at"] is not None
    assert client_for(approvers[0]).get("/api/notifications/unread-count/").json() == {"unread_count": 0}


def test_an_approver_may_not_withdraw(in_review, approvers):
    assert_error(withdraw(approvers[0], in_review.pk), 403, "forbidden")


def test_withdrawing_twice_is_409(in_review, requester):
    assert withdraw(requester, in_review.pk).status_code == 200
    assert_error(withdraw(requester, in_review.pk), 409, "invalid_transition")


def test_a_draft_cannot_be_withdrawn(requester, department, approvers):
    draft = services.document_create(requester=requester, department=department, title="Draft", approvers=approvers)
    assert_error(withdraw(requester, draft.pk), 409, "invalid_transition")


@pytest.mark.parametrize("document_id", ["999999", "x"])
def test_unknown_document_is_404(requester, document_id):
    response = client_for(requester).post(f"{URL}{document_id}/withdraw/", "{}", content_type="application/json")
    assert response.status_code == 404


def test_an_outsider_gets_404(in_review):
    outsider = UserFactory()
    add_members(DepartmentFactory(), outsider)
    assert_error(withdraw(outsider, in_review.pk), 404, "not_found")


def test_needs_a_user(in_review):
    assert_error(client_for().post(f"{URL}{in_review.pk}/withdraw/"), 401, "not_authenticated")
