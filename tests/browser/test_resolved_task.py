"""An approver's task notification follows the work: approved from another device, it shows as done at once."""

import pytest
from playwright.sync_api import expect
from rest_framework_simplejwt.tokens import AccessToken

from tests.support.browser import CONNECTED, bell, browser_user, connection_status, inbox_item, save_doc_screenshot
from tests.support.factories import DepartmentFactory, add_members
from tests.support.servers import post_json

pytestmark = pytest.mark.django_db(transaction=True)


def api(web_server, user, path: str, payload: dict) -> dict:
    """POST to the shared web process's REST API as `user` (their phone, say): not through this test's thread,
    whose Playwright event loop must not run the layer's sync sends."""
    response = post_json(web_server, path, payload, token=str(AccessToken.for_user(user)))
    assert response.status in (200, 201), response
    return response.body


def test_a_task_approved_on_another_device_shows_as_done_in_the_open_inbox(open_person, web_server):
    requester = browser_user(username="erin", first_name="Erin", last_name="Moss")
    approver = browser_user(username="dave", first_name="Dave", last_name="Kim")
    department = DepartmentFactory(code="finance", name="Finance")
    add_members(department, requester, approver)
    body = {"title": "Lyon supplier audit", "department": "finance", "approvers": ["dave"]}
    document_id = api(web_server, requester, "/api/documents/", body)["id"]
    api(web_server, requester, f"/api/documents/{document_id}/submit/", {})
    inbox = open_person(approver).sign_in("/inbox/")
    expect(connection_status(inbox)).to_have_text(CONNECTED)
    item = inbox_item(inbox, "Erin Moss asks you to approve")
    expect(item).to_contain_text("Unread")
    expect(bell(inbox)).to_have_accessible_name("Notifications, 1 unread")

    # The approver decides on their phone (the API), not in this tab.
    api(web_server, approver, f"/api/documents/{document_id}/approve/", {})

    expect(item.locator(".pill-done")).to_have_text("Done")
    expect(item).not_to_contain_text("Unread")
    expect(item.get_by_role("button", name="Mark as read")).to_have_count(0)
    expect(bell(inbox)).to_have_accessible_name("Notifications, no unread")
    expect(inbox.locator("#inbox-summary")).to_have_text("All read")
    save_doc_screenshot(inbox, "web-inbox-resolved")


def test_the_requester_withdraws_on_the_document_page_and_the_approvers_task_shows_as_done(open_person, web_server):
    requester = browser_user(username="erin", first_name="Erin", last_name="Moss")
    approver = browser_user(username="dave", first_name="Dave", last_name="Kim")
    department = DepartmentFactory(code="finance", name="Finance")
    add_members(department, requester, approver)
    body = {"title": "Lyon supplier audit", "department": "finance", "approvers": ["dave"]}
    document_id = api(web_server, requester, "/api/documents/", body)["id"]
    api(web_server, requester, f"/api/documents/{document_id}/submit/", {})
    dave = open_person(approver)
    inbox = dave.sign_in("/inbox/")
    item = inbox_item(inbox, "Erin Moss asks you to approve")
    expect(item).to_contain_text("Unread")
    daves_document_page = dave.new_page(f"/documents/{document_id}/")
    expect(connection_status(daves_document_page)).to_have_text(CONNECTED)
    expect(daves_document_page.get_by_role("button", name="Approve")).to_be_visible()
    document_page = open_person(requester).sign_in(f"/documents/{document_id}/")
    withdraw = document_page.get_by_role("button", name="Withdraw")
    expect(withdraw).to_be_visible()
    save_doc_screenshot(document_page, "web-document-withdraw")

    withdraw.click()

    expect(document_page.get_by_text("Withdrawn: the approver's task is cancelled")).to_be_visible()
    expect(document_page.get_by_role("button", name="Withdraw")).to_have_count(0)
    expect(item.locator(".pill-done")).to_have_attribute("title", "The document was withdrawn")
    expect(bell(inbox)).to_have_accessible_name("Notifications, no unread")
    # Dave's open document page drops the decision form nobody can use any more.
    expect(daves_document_page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(daves_document_page.get_by_text("Withdrawn", exact=True)).to_be_visible()
