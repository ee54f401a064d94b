"""My tasks, Documents, New document and the document page: what each shows, and every action through the
workflow services, refusals shown on the page (never a 500), and 404 for documents one may not see."""

import re

import pytest

from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow.models import ApprovalStep, Document, Task

pytestmark = pytest.mark.django_db


def page_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return re.findall(r'<li class="message message-\w+">([^<]*)</li>', page_of(response))


class TestMyTasks:
    def test_lists_my_open_tasks_with_links_to_their_documents(self, client_for, in_review, approvers):
        page = page_of(client_for(approvers[0]).get("/tasks/"))
        assert '<ul id="task-list" class="cards">' in page
        assert f'<a href="/documents/{in_review.pk}/">Team offsite</a>' in page
        assert "Step 1 · requested by" in page

    def test_someone_else_has_none(self, client_for, in_review, approvers):
        page = page_of(client_for(approvers[1]).get("/tasks/"))  # the second step waits
        assert "Team offsite" not in page
        assert "No open tasks." in page


class TestDocuments:
    def test_mine_and_those_shared_with_me_with_their_status(self, client_for, in_review, requester, approvers):
        mine = page_of(client_for(requester).get("/documents/"))
        theirs = page_of(client_for(approvers[0]).get("/documents/"))

        assert mine.index("Requested by me") < mine.index("Team offsite") < mine.index("Shared with me")
        assert theirs.index("Shared with me") < theirs.index("Team offsite")
        assert '<span class="status status-in_review">In review</span>' in mine
        assert '<a class="button button-primary" href="/documents/new/">New document</a>' in mine

    def test_outsiders_do_not_see_it(self, client_for, in_review):
        assert "Team offsite" not in page_of(client_for(UserFactory()).get("/documents/"))


class TestNewDocument:
    @pytest.fixture
    def form_page(self, client_for, requester, approvers):
        return page_of(client_for(requester).get("/documents/new/"))

    def test_the_form_has_labelled_fields(self, form_page, department, approvers, requester):
        for label, field in [("Title", "title"), ("Description", "description"), ("Department", "department")]:
            assert f'<label for="id_{field}">{label}</label>' in form_page
        assert '<label for="id_approvers">Approvers</label>' in form_page
        assert 'list="approver-names"' in form_page
        assert f'<option value="{department.pk}">{department.name}</option>' in form_page
        assert f'<option value="{approvers[0].username}">' in form_page
        assert f'<option value="{requester.username}">' not in form_page  # not oneself
        assert ">Create draft</button>" in form_page

    def test_only_my_departments_are_offered(self, form_page):
        other = DepartmentFactory()
        assert other.name not in form_page

    def test_creates_a_draft_with_the_approvers_in_the_order_written(
        self, client_for, requester, department, approvers
    ):
        body = {
            "title": "New laptops",
            "description": "For the team.",
            "department": department.pk,
            "approvers": f"{approvers[1].username}, {approvers[0].username}",
        }
        response = client_for(requester).post("/documents/new/", body, follow=True)

        document = Document.objects.get(title="New laptops")
        assert response.redirect_chain == [(f"/documents/{document.pk}/", 302)]
        assert document.status == Document.Status.DRAFT
        assert document.requester == requester
        assert [step.approver for step in document.steps.order_by("order")] == [approvers[1], approvers[0]]
        assert "Draft created. Submit it for approval when it is ready." in messages_of(response)

    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            ({"title": ""}, "title", "This field is required."),
            ({"title": "x" * 201}, "title", "Ensure this value has at most 200 characters"),
            ({"approvers": " , "}, "approvers", "Name at least one approver."),
            ({"approvers": "ghost, nobody"}, "approvers", "No such user: ghost, nobody."),
            ({"approvers": "SELF"}, "approvers", "The requester cannot approve their own document."),
            ({"approvers": "FIRST FIRST"}, "approvers", "An approver may appear only once"),
            ({"approvers": "INACTIVE"}, "approvers", "Inactive users cannot approve"),
            ({"approvers": ",".join(["FIRST"] * 21)}, "approvers", "At most 20 approvers."),
            ({"department": "OTHER"}, "department", "Select a valid choice."),
            ({"department": "abc"}, "department", "Select a valid choice."),
        ],
    )
    def test_bad_input_is_shown_beside_its_field(
        self, client_for, requester, department, approvers, change, field, message
    ):
        inactive = UserFactory(is_active=False)
        names = {"SELF": requester.username, "FIRST": approvers[0].username, "INACTIVE": inactive.username}
        body = {"title": "Fine", "department": department.pk, "approvers": approvers[0].username, **change}
        body["approvers"] = " ".join(names.get(word, word) for word in body["approvers"].split(" "))
        body["approvers"] = ",".join(names.get(word, word) for word in body["approvers"].split(","))
        if body["department"] == "OTHER":
            body["department"] = DepartmentFactory().pk

        response = client_for(requester).post("/documents/new/", body)

        assert response.status_code == 400
        error = re.search(rf'<p class="field-error" id="id_{field}_error">([^<]*)</p>', page_of(response))
        assert error and message in error.group(1).replace("&#x27;", "'"), page_of(response)[:3000]
        assert not Document.objects.filter(title="Fine").exists()

    def test_a_department_i_left_meanwhile_is_refused_on_its_field(self, client_for, requester, department, approvers):
        """The form offered it when it was drawn; what counts is membership when it is sent."""
        client = client_for(requester)
        second = DepartmentFactory(name="Second")
        add_members(second, requester)
        second.memberships.filter(user=requester).delete()

        body = {"title": "Late", "department": second.pk, "approvers": approvers[0].username}
        response = client.post("/documents/new/", body)

        assert response.status_code == 400
        assert "Select a valid choice." in page_of(response)


class TestDocumentPage:
    def test_shows_the_document_its_steps_and_the_approvers_decision_form(self, client_for, in_review, approvers):
        page = page_of(client_for(approvers[0]).get(f"/documents/{in_review.pk}/"))

        assert "<h1>Team offsite</h1>" in page
        assert '<dd id="document-status" class="status status-in_review">In review</dd>' in page
        assert '<ol id="steps" class="steps">' in page
        assert page.count('<li class="step ') == 2
        assert "Pending decision" in page and "Waiting for earlier steps" in page
        assert "Two days." in page
        assert '<label for="id_comment">Comment</label>' in page
        assert ">Approve</button>" in page and ">Reject</button>" in page
        assert "Submit for approval" not in page
        assert 'id="presence"' in page and 'id="typing"' in page
        assert f'data-document-id="{in_review.pk}"' in page

    def test_the_next_approver_and_the_requester_get_no_decision_form(
        self, client_for, in_review, approvers, requester
    ):
        for user in (approvers[1], requester):
            page = page_of(client_for(user).get(f"/documents/{in_review.pk}/"))
            assert ">Approve</button>" not in page
            assert "Team offsite" in page

    @pytest.mark.parametrize("path", ["", "submit/", "approve/", "reject/"])
    def test_a_document_i_may_not_see_is_not_found(self, client_for, in_review, path):
        client = client_for(UserFactory())
        response = (
            client.post(f"/documents/{in_review.pk}/{path}") if path else client.get(f"/documents/{in_review.pk}/")
        )
        assert response.status_code == 404
        assert "Back to your inbox" in page_of(response)

    @pytest.mark.parametrize("document_id", ["999999", "0", "99999999999999999999999", "-1", "abc"])
    def test_bad_ids_are_not_found(self, client_for, document_id):
        response = client_for(UserFactory()).get(f"/documents/{document_id}/")
        assert response.status_code == 404

    def test_the_requester_submits_a_draft(self, client_for, requester, department, approvers):
        client = client_for(requester)
        client.post(
            "/documents/new/",
            {"title": "Draft", "department": department.pk, "approvers": approvers[0].username},
        )
        document = Document.objects.get(title="Draft")
        assert "Submit for approval</button>" in page_of(client.get(f"/documents/{document.pk}/"))

        response = client.post(f"/documents/{document.pk}/submit/", follow=True)

        document.refresh_from_db()
        assert document.status == Document.Status.IN_REVIEW
        assert Task.objects.filter(document=document, assignee=approvers[0], status=Task.Status.OPEN).exists()
        assert "Submitted: the first approver has it now." in messages_of(response)
        assert "Submit for approval</button>" not in page_of(response)

    def test_submitting_twice_says_why_not(self, client_for, in_review, requester):
        response = client_for(requester).post(f"/documents/{in_review.pk}/submit/", follow=True)
        assert response.status_code == 200
        assert any("only drafts can be submitted" in message for message in messages_of(response))

    def test_the_approver_approves_with_a_comment(self, client_for, in_review, approvers):
        response = client_for(approvers[0]).post(
            f"/documents/{in_review.pk}/approve/", {"comment": "Fine by me."}, follow=True
        )

        step = ApprovalStep.objects.get(document=in_review, order=1)
        assert step.status == ApprovalStep.Status.APPROVED
        assert step.decided_by == approvers[0]
        assert step.comment == "Fine by me."
        assert "Approved." in messages_of(response)
        page = page_of(response)
        assert "Fine by me." in page
        assert f"Approved by {approvers[0].get_full_name()}" in page

    def test_the_last_approval_approves_the_document(self, client_for, in_review, approvers):
        client_for(approvers[0]).post(f"/documents/{in_review.pk}/approve/")
        response = client_for(approvers[1]).post(f"/documents/{in_review.pk}/approve/", follow=True)
        assert '<dd id="document-status" class="status status-approved">Approved</dd>' in page_of(response)

    def test_a_rejection_without_a_comment_is_shown_on_the_comment_field(self, client_for, in_review, approvers):
        response = client_for(approvers[0]).post(f"/documents/{in_review.pk}/reject/", {"comment": "  "})

        assert response.status_code == 400
        assert '<p class="field-error" id="id_comment_error">Say why you reject it' in page_of(response)
        in_review.refresh_from_db()
        assert in_review.status == Document.Status.IN_REVIEW

    def test_the_approver_rejects_saying_why(self, client_for, in_review, approvers):
        response = client_for(approvers[0]).post(
            f"/documents/{in_review.pk}/reject/", {"comment": "Too expensive."}, follow=True
        )
        in_review.refresh_from_db()
        assert in_review.status == Document.Status.REJECTED
        assert "Rejected: the requester has been told why." in messages_of(response)
        assert "Too expensive." in page_of(response)

    @pytest.mark.parametrize("action", ["approve", "reject"])
    def test_deciding_what_is_not_mine_to_decide_says_why(self, client_for, in_review, approvers, requester, action):
        for user in (approvers[1], requester):
            response = client_for(user).post(f"/documents/{in_review.pk}/{action}/", {"comment": "x"}, follow=True)
            assert response.status_code == 200
            assert any("is not yours to decide" in message for message in messages_of(response))
        assert ApprovalStep.objects.get(document=in_review, order=1).status == ApprovalStep.Status.PENDING

    def test_an_overlong_comment_is_a_field_error(self, client_for, in_review, approvers):
        response = client_for(approvers[0]).post(f"/documents/{in_review.pk}/approve/", {"comment": "x" * 2001})
        assert response.status_code == 400
        assert 'id="id_comment_error"' in page_of(response)

    def test_actions_are_posts_with_the_csrf_token(self, client_for, in_review, approvers):
        client = client_for(approvers[0], enforce_csrf_checks=True)
        assert client.get(f"/documents/{in_review.pk}/approve/").status_code == 405
        assert client.post(f"/documents/{in_review.pk}/approve/").status_code == 403
        assert ApprovalStep.objects.get(document=in_review, order=1).status == ApprovalStep.Status.PENDING
