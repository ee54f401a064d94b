"""Out of office in the browser: bob names carol his delegate on My tasks, alice's document arrives on carol's open
My tasks page on bob's behalf, carol approves it, and the admin's document timeline says who decided for whom.

With NOTIFYHUB_SCREENSHOTS set, saves web-out-of-office, web-tasks-on-behalf, admin-document-delegation and
admin-delegations.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework_simplejwt.tokens import AccessToken

from tests.browser.test_console_evidence import sign_in_to_the_admin
from tests.support.browser import CONNECTED, browser_user, connection_status, save_doc_screenshot
from tests.support.factories import DepartmentFactory, add_members
from tests.support.servers import post_json
from workflow.models import ApprovalStep, Delegation

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_delegate_decides_on_behalf_of_an_approver_who_is_out_of_office(open_person, web_server):
    alice = browser_user(username="alice", first_name="Alice", last_name="Requester")
    bob = browser_user(username="bob", first_name="Bob", last_name="Baker")
    carol = browser_user(username="carol", first_name="Carol", last_name="Cole")
    operator = browser_user(username="ops", first_name="Olga", last_name="Operator", is_staff=True, is_superuser=True)
    add_members(DepartmentFactory(code="finance", name="Finance"), alice, bob, carol)
    until = timezone.localtime(timezone.now() + timedelta(days=5)).replace(hour=18, minute=0)

    bobs = open_person(bob).sign_in("/tasks/")
    section = bobs.locator("#out-of-office")
    section.get_by_label("Delegate").fill("carol")
    section.get_by_label("Until").fill(until.strftime("%Y-%m-%dT%H:%M"))
    section.get_by_role("button", name="Save out of office").click()

    expect(bobs.get_by_text("Out of office saved: Carol Cole takes your new tasks in that period.")).to_be_visible()
    expect(bobs.locator("#delegation-list")).to_contain_text("Carol Cole takes your new tasks")
    expect(bobs.locator("#delegation-list")).to_contain_text(f"until {until:%-d %b %Y, %H:%M} UTC")
    expect(bobs.locator("#delegation-list .pill-away")).to_have_text("Away now")
    assert Delegation.objects.get().delegate == carol
    save_doc_screenshot(bobs, "web-out-of-office", locator=section)

    carols = open_person(carol).sign_in("/tasks/")
    expect(connection_status(carols)).to_have_text(CONNECTED)
    token = str(AccessToken.for_user(alice))
    body = {"title": "Lyon supplier audit", "department": "finance", "approvers": ["bob"]}
    created = post_json(web_server, "/api/documents/", body, token=token)
    assert created.status == 201, created
    document_id = created.body["id"]
    assert post_json(web_server, f"/api/documents/{document_id}/submit/", {}, token=token).status == 200

    task = carols.locator("#task-list li", has_text="Lyon supplier audit")
    expect(task).to_contain_text("on behalf of Bob Baker (out of office)")
    save_doc_screenshot(carols, "web-tasks-on-behalf")
    task.get_by_role("link", name="Review “Lyon supplier audit”").click()
    carols.get_by_role("button", name="Approve").click()
    expect(carols.get_by_text("Approved.", exact=True)).to_be_visible()
    expect(carols.locator("body")).to_contain_text("Approved by Carol Cole on behalf of Bob Baker")
    step = ApprovalStep.objects.get(document_id=document_id)
    assert (step.decided_by, step.decided_on_behalf_of) == (carol, bob)

    admin = open_person(operator).new_page()
    sign_in_to_the_admin(admin, "ops")
    admin.goto(f"/admin/workflow/document/{document_id}/change/")
    timeline = admin.locator(".nh-timeline").first
    opened = "Task opened for step 1: Carol Cole (carol) on behalf of Bob Baker (bob)"
    expect(timeline).to_contain_text(f"{opened} (out of office until {until:%Y-%m-%d %H:%M})")
    expect(timeline).to_contain_text("Step 1 approved by Carol Cole (carol) on behalf of Bob Baker (bob)")
    save_doc_screenshot(admin, "admin-document-delegation")
    admin.goto("/admin/workflow/delegation/")
    expect(admin.locator("#result_list")).to_contain_text("Bob Baker (bob)")
    save_doc_screenshot(admin, "admin-delegations")

    bobs.locator("#delegation-list").get_by_role("button", name="Cancel the delegation to carol").click()
    expect(bobs.get_by_text("Out of office cancelled: new tasks come to you again.")).to_be_visible()
    expect(bobs.locator("#delegation-list")).to_have_count(0)
