"""/api/documents/ and /api/tasks/: the workflow over HTTP, its notifications, and who may do what."""

import json

import pytest

from notifications.models import Delivery, Notification
from tests.support.api import assert_error, client_for
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow import services
from workflow.models import Document, Task

pytestmark = pytest.mark.django_db
URL = "/api/documents/"


def post(client, url: str, body: dict | None = None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def create_body(department, approvers, overrides: dict | None = None) -> dict:
    return {
        "title": "Q3 travel",
        "description": "Flights",
        "department": department.code,
        "approvers": [approvers[0].username, approvers[1].pk],
        **(overrides or {}),
    }


@pytest.fixture
def draft(requester, department, approvers):
    return services.document_create(requester=requester, department=department, title="Budget", approvers=approvers)


@pytest.fixture
def in_review(draft, requester):
    return services.document_submit(document=draft, submitted_by=requester)


@pytest.fixture
def outsider():
    other_department = DepartmentFactory()
    user = UserFactory()
    add_members(other_department, user)
    return user


def snapshot(document):
    document.refresh_from_db()
    return (
        document.status,
        list(document.steps.values_list("order", "status", "decided_by_id", "comment")),
        list(Task.objects.filter(document=document).values_list("id", "status")),
        Notification.objects.count(),
    )


class TestCreate:
    def test_creates_a_draft_with_approvers_by_username_and_id(self, requester, department, approvers):
        response = post(client_for(requester), URL, create_body(department, approvers))

        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["status"] == "draft"
        assert body["requester"]["id"] == requester.pk
        assert body["department"] == {"id": department.pk, "code": department.code, "name": department.name}
        assert [(step["order"], step["approver"]["id"], step["status"]) for step in body["steps"]] == [
            (1, approvers[0].pk, "waiting"),
            (2, approvers[1].pk, "waiting"),
        ]
        assert body["current_step"] is None
        assert response["Location"] == f"/api/documents/{body['id']}/"
        assert Document.objects.get().requester == requester

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"department": "no-such"}, "department"),
            ({"department": 10**9}, "department"),
            ({"approvers": []}, "approvers"),
            ({"approvers": ["ghost", 10**9]}, "approvers"),
            ({"approvers": "bob"}, "approvers"),
            ({"title": ""}, "title"),
            ({"title": None}, "title"),
            # Server-owned fields are refused.
            ({"status": "approved"}, "status"),
            ({"requester": 1}, "requester"),
            ({"submitted_at": "2020-01-01T00:00:00Z"}, "submitted_at"),
        ],
    )
    def test_bad_input_is_a_400_and_creates_nothing(self, requester, department, approvers, overrides, field):
        error = assert_error(
            post(client_for(requester), URL, create_body(department, approvers, overrides)), 400, "invalid"
        )
        assert field in error["fields"]
        assert not Document.objects.exists()

    def test_workflow_rules_come_back_as_their_codes(self, requester, department, approvers):
        client = client_for(requester)
        self_approval = post(client, URL, create_body(department, [requester, approvers[0]]))
        assert_error(self_approval, 400, "self_approval")
        foreign = DepartmentFactory()
        assert_error(post(client, URL, create_body(foreign, approvers)), 400, "not_a_member")
        duplicate = post(client, URL, create_body(department, approvers, {"approvers": [approvers[0].pk] * 2}))
        assert_error(duplicate, 400, "invalid")
        assert not Document.objects.exists()


class TestReadAndList:
    def test_list_shows_only_documents_i_am_part_of(self, draft, requester, approvers, outsider, department):
        services.document_create(
            requester=outsider, department=outsider.departments.get(), title="Theirs", approvers=[UserFactory()]
        )
        assert [doc["id"] for doc in client_for(requester).get(URL).json()["results"]] == [draft.pk]
        assert [doc["id"] for doc in client_for(approvers[1]).get(URL).json()["results"]] == [draft.pk]
        assert [doc["title"] for doc in client_for(outsider).get(URL).json()["results"]] == ["Theirs"]

    def test_list_filters_by_status(self, in_review, requester, department, approvers):
        services.document_create(requester=requester, department=department, title="Other", approvers=approvers)
        client = client_for(requester)
        assert [doc["id"] for doc in client.get(URL, {"status": "in_review"}).json()["results"]] == [in_review.pk]
        assert_error(client.get(URL, {"status": "lost"}), 400, "invalid")

    def test_detail_shows_the_steps(self, in_review, approvers):
        body = client_for(approvers[0]).get(f"{URL}{in_review.pk}/").json()
        assert body["status"] == "in_review"
        assert body["current_step"] == 1
        assert [step["status"] for step in body["steps"]] == ["pending", "waiting"]

    @pytest.mark.parametrize("document_id", ["abc", "99999999", str(2**70)])
    def test_unknown_document_is_404(self, requester, document_id):
        assert_error(client_for(requester).get(f"{URL}{document_id}/"), 404, "not_found")


class TestTransitions:
    def test_submit_notifies_the_first_approver_in_their_inbox(self, draft, requester, approvers):
        response = post(client_for(requester), f"{URL}{draft.pk}/submit/")

        assert response.status_code == 200
        assert response.json()["status"] == "in_review"
        inbox = client_for(approvers[0]).get("/api/notifications/").json()["results"]
        assert [(item["event"], item["data"]["documentId"]) for item in inbox] == [("NewTask", draft.pk)]
        tasks = client_for(approvers[0]).get("/api/tasks/").json()["results"]
        assert [(task["document"]["id"], task["step"], task["status"]) for task in tasks] == [(draft.pk, 1, "open")]
        assert client_for(approvers[1]).get("/api/tasks/").json()["results"] == []

    def test_approve_through_both_steps(self, in_review, requester, approvers):
        first = post(client_for(approvers[0]), f"{URL}{in_review.pk}/approve/", {"comment": "ok"})
        assert first.status_code == 200
        assert first.json()["current_step"] == 2
        assert first.json()["steps"][0]["comment"] == "ok"
        final = post(client_for(approvers[1]), f"{URL}{in_review.pk}/approve/")
        assert final.json()["status"] == "approved"
        events = [item["event"] for item in client_for(requester).get("/api/notifications/").json()["results"]]
        assert events == ["DocumentApproved", "DocumentApproved"]

    def test_reject_needs_a_comment_and_tells_the_requester(self, in_review, requester, approvers):
        client = client_for(approvers[0])
        before = snapshot(in_review)
        assert "comment" in assert_error(post(client, f"{URL}{in_review.pk}/reject/"), 400, "invalid")["fields"]
        blank = post(client, f"{URL}{in_review.pk}/reject/", {"comment": "   "})
        assert "comment" in assert_error(blank, 400, "invalid")["fields"]
        assert snapshot(in_review) == before

        response = post(client, f"{URL}{in_review.pk}/reject/", {"comment": "Too expensive"})

        assert response.json()["status"] == "rejected"
        item = client_for(requester).get("/api/notifications/").json()["results"][0]
        assert (item["event"], item["data"]["comment"]) == ("DocumentRejected", "Too expensive")

    def test_approve_with_unknown_field_is_refused(self, in_review, approvers):
        before = snapshot(in_review)
        response = post(client_for(approvers[0]), f"{URL}{in_review.pk}/approve/", {"status": "approved"})
        assert "status" in assert_error(response, 400, "invalid")["fields"]
        assert snapshot(in_review) == before

    def test_visible_but_not_yours_is_403_and_unchanged(self, in_review, requester, approvers, department):
        colleague = UserFactory()
        add_members(department, colleague)
        before = snapshot(in_review)
        assert_error(post(client_for(colleague), f"{URL}{in_review.pk}/approve/"), 403, "forbidden")
        assert_error(post(client_for(approvers[1]), f"{URL}{in_review.pk}/approve/"), 403, "forbidden")
        assert_error(post(client_for(requester), f"{URL}{in_review.pk}/approve/"), 403, "forbidden")
        assert snapshot(in_review) == before

    def test_wrong_state_is_409(self, draft, in_review, requester, approvers):
        assert_error(post(client_for(requester), f"{URL}{in_review.pk}/submit/"), 409, "invalid_transition")

    def test_approving_a_draft_is_409(self, draft, approvers):
        assert_error(post(client_for(approvers[0]), f"{URL}{draft.pk}/approve/"), 409, "invalid_transition")


class TestNotPartOfIt:
    """A document you are not part of is a 404 for every action, and nothing changes."""

    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [
            ("get", "", None),
            ("post", "submit/", {}),
            ("post", "approve/", {}),
            ("post", "reject/", {"comment": "no"}),
        ],
    )
    def test_outsider_gets_404(self, draft, in_review, outsider, method, suffix, body):
        before = snapshot(in_review)
        client = client_for(outsider)
        if method == "get":
            response = client.get(f"{URL}{in_review.pk}/{suffix}")
        else:
            response = post(client, f"{URL}{in_review.pk}/{suffix}", body)
        missing = client.get(f"{URL}99999999/")
        assert_error(response, 404, "not_found")
        assert response.json() == missing.json()
        assert snapshot(in_review) == before
        assert not Delivery.objects.filter(recipient=outsider).exists()


def test_tasks_need_a_user():
    assert_error(client_for().get("/api/tasks/"), 401, "not_authenticated")
