"""A task's notification carries Approve and Reject: the approver decides from the inbox, and their other tab shows
the task as done at once; an operator finds every action performed, and the publishers' callbacks, in the admin.

With NOTIFYHUB_SCREENSHOTS set, saves web-inbox-actions, console-action-performances and
console-delivery-timeline-action."""

import pytest
from playwright.sync_api import expect
from rest_framework_simplejwt.tokens import AccessToken

from notifications.models import ActionCallback, ActionPerformance, Delivery
from notifications.services import notification_action_perform
from tests.browser.test_console_evidence import sign_in_to_the_admin
from tests.support.actions import action, invoice_with_actions
from tests.support.browser import CONNECTED, bell, browser_user, connection_status, inbox_item, save_doc_screenshot
from tests.support.callback_server import CallbackServer
from tests.support.factories import DepartmentFactory, add_members
from tests.support.servers import post_json
from tests.support.waiting import eventually
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


def test_an_operator_sees_the_actions_performed_and_the_publishers_callbacks(open_person, web_server):

    approver, document_id, erins_token = submitted_document(web_server)
    assert post_json(web_server, f"/api/documents/{document_id}/submit/", {}, token=erins_token).status == 200
    task = Delivery.objects.get(recipient=approver, notification__event="NewTask")
    notification_action_perform(
        notification_id=task.notification_id, user=approver, action="approve", comment="Within the audit budget."
    )
    callbacks = CallbackServer().start()
    try:
        erp = browser_user(username="erp", first_name="ERP", last_name="integration")
        ActionCallback.objects.create(publisher=erp, url=callbacks.url)
        invoice = invoice_with_actions(
            publisher=erp,
            recipient=approver,
            actions=[action("dispute", "Dispute", requires_comment=True)],
            title="Invoice 2026-118 is overdue",
        )
        notification_action_perform(
            notification_id=invoice.pk, user=approver, action="dispute", comment="Paid on 2 December."
        )
        assert eventually(lambda: ActionPerformance.objects.get(notification=invoice).callback_status == "delivered")
    finally:
        callbacks.stop()
    operator = browser_user(username="olga", first_name="Olga", last_name="Operator", is_staff=True, is_superuser=True)
    page = open_person(operator).new_page()
    sign_in_to_the_admin(page, "olga")

    page.goto("/admin/notifications/actionperformance/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="dispute")).to_contain_text("The publisher answered 2xx")
    expect(rows.filter(has_text="approve")).to_contain_text("Approved the task's step")
    save_doc_screenshot(page, "console-action-performances")

    page.goto(f"/admin/notifications/delivery/{task.pk}/change/")
    timeline = page.locator(".nh-timeline")
    expect(timeline).to_contain_text("Action performed: approve (approved the task's step)")
    expect(timeline).to_contain_text("“Within the audit budget.”")
    save_doc_screenshot(page, "console-delivery-timeline-action")
