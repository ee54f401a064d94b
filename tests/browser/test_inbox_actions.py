"""A task's notification carries Approve and Reject: the approver decides from the inbox, and their other tab shows
the task as done at once."""

import pytest
from playwright.sync_api import expect
from rest_framework_simplejwt.tokens import AccessToken

from tests.support.browser import CONNECTED, bell, browser_user, connection_status, inbox_item, save_doc_screenshot
from tests.support.factories import DepartmentFactory, add_members
from tests.support.servers import post_json
from workflow.models import Document

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "Erin Moss asks you to approve"


def submitted_document(web_server) -> tuple:
    """Erin's document, submitted for Dave's approval through the API (as her phone would)."""
    requester = browser_user(username="erin", first_name="Erin", last_name="Moss")
    approver = browser_user(username="dave", first_name="Dave", last_name="Kim")
    add_members(DepartmentFactory(code="finance", name="Finance"), requester, approver)
    token = str(AccessToken.for_user(requester))
    body = {"title": "Lyon supplier audit", "department": "finance", "approvers": ["dave"]}
    created = post_json(web_server, "/api/documents/", body, token=token)
    assert created.status == 201, created
    return approver, created.body["id"], token


def test_a_task_arriving_live_is_rejected_from_the_inbox_with_a_comment(open_person, web_server):
    approver, document_id, erins_token = submitted_document(web_server)
    inbox = open_person(approver).sign_in("/inbox/")
    expect(connection_status(inbox)).to_have_text(CONNECTED)

    assert post_json(web_server, f"/api/documents/{document_id}/submit/", {}, token=erins_token).status == 200
    item = inbox_item(inbox, TASK)
    expect(item.get_by_role("button", name="Approve")).to_be_visible()
    item.get_by_text("Reject…").click()
    comment = item.get_by_label("Why? (required)")
    expect(comment).to_be_visible()
    comment.fill("The audit budget is already spent.")
    save_doc_screenshot(inbox, "web-inbox-actions")

    item.get_by_role("button", name="Reject", exact=True).click()

    expect(inbox.get_by_text("Rejected: the requester has been told why.")).to_be_visible()
    item = inbox_item(inbox, TASK)
    expect(item.locator(".pill-done")).to_have_text("Done")
    expect(item.get_by_role("button", name="Approve")).to_have_count(0)
    document = Document.objects.get(pk=document_id)
    assert document.status == "rejected"
    assert document.steps.get().comment == "The audit budget is already spent."


def test_approved_in_one_tab_the_other_tab_shows_the_task_done(open_person, web_server):
    approver, document_id, erins_token = submitted_document(web_server)
    assert post_json(web_server, f"/api/documents/{document_id}/submit/", {}, token=erins_token).status == 200
    dave = open_person(approver)
    inbox = dave.sign_in("/inbox/")
    other_tab = dave.new_page("/inbox/")
    expect(connection_status(other_tab)).to_have_text(CONNECTED)
    expect(inbox_item(other_tab, TASK).get_by_role("button", name="Approve")).to_be_visible()

    inbox_item(inbox, TASK).get_by_role("button", name="Approve").click()

    expect(inbox.get_by_text("Approved.", exact=True)).to_be_visible()
    expect(inbox_item(inbox, TASK).get_by_role("button", name="Approve")).to_have_count(0)
    elsewhere = inbox_item(other_tab, TASK)
    expect(elsewhere.locator(".pill-done")).to_have_text("Done")
    expect(elsewhere.get_by_role("button", name="Approve")).to_have_count(0)
    expect(elsewhere.get_by_text("Reject…")).to_have_count(0)
    expect(bell(other_tab)).to_have_accessible_name("Notifications, no unread")
    assert Document.objects.get(pk=document_id).status == "approved"
