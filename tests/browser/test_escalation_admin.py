"""An operator gives a department its reminder and escalation times and contact in the admin, then reads on a
document's page that its ignored task reminded the approver and was escalated to that contact; once the task is
decided, the escalation's delivery ends resolved.

With NOTIFYHUB_SCREENSHOTS set, saves admin-department-escalation, admin-document-escalation and
admin-delivery-resolved-escalation.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from notifications.models import Delivery, Notification
from tests.browser.test_console_evidence import assert_no_save_or_delete, sign_in_to_the_admin
from tests.support.browser import browser_user, save_doc_screenshot
from tests.support.factories import DepartmentFactory, DeviceFactory, add_members
from tests.support.waiting import eventually
from workflow import services
from workflow.models import Department, Document, Task

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_sets_the_times_and_reads_what_came_of_them(open_person):
    run = uuid.uuid4().hex[:6]
    operator = browser_user(username=f"ops-{run}", is_staff=True, is_superuser=True)
    requester = browser_user(username=f"grace-{run}", first_name="Grace", last_name="Hopper")
    approver = browser_user(username=f"linus-{run}", first_name="Linus", last_name="Torvalds")
    contact = browser_user(username=f"carol-{run}", first_name="Carol", last_name="Chief")
    DeviceFactory(user=contact, app_install_id=f"carols-phone-{run}")  # pushes only logged here
    department = DepartmentFactory(code=f"fin-{run}", name="Finance")
    add_members(department, requester)
    page = open_person(operator).new_page()
    sign_in_to_the_admin(page, operator.get_username())

    page.goto(f"/admin/workflow/department/{department.pk}/change/")
    expect(page.get_by_role("heading", name="Tasks nobody acts on")).to_be_visible()
    page.get_by_label("Remind after").fill("1 00:00:00")
    page.get_by_label("Escalate after").fill("2 00:00:00")
    page.locator("#id_escalation_contact + .select2").click()
    page.keyboard.type(contact.get_username())
    page.locator(".select2-results__option", has_text=contact.get_username()).click()
    save_doc_screenshot(page, "admin-department-escalation")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    department.refresh_from_db()
    assert (department.remind_after, department.escalate_after, department.escalation_contact_id) == (
        timedelta(days=1),
        timedelta(days=2),
        contact.pk,
    )

    document = ignored_for_three_days(requester, department, approver)
    page.goto(f"/admin/workflow/document/{document.pk}/change/")

    expect(page.locator("#follow-up-rule")).to_have_text(
        f"Open tasks: reminder after 24 h (department fin-{run}); "
        f"escalation after 2 days (department fin-{run}), to Carol Chief ({contact.get_username()})."
    )
    timeline = page.locator(".nh-timeline").first
    expect(timeline).to_contain_text("Reminded Linus Torvalds")
    expect(timeline).to_contain_text("the task of step 1 waited 24 h")
    expect(timeline).to_contain_text(f"Escalated to Carol Chief ({contact.get_username()})")
    expect(timeline).to_contain_text("waited 2 days")
    notifications = page.locator(".nh-timeline").nth(1)
    expect(notifications).to_contain_text("Reminder: a task waits for you")
    expect(notifications).to_contain_text("Escalated: a task is waiting too long")
    save_doc_screenshot(page, "admin-document-escalation")
    assert_no_save_or_delete(page)

    page.goto("/admin/workflow/task/")
    expect(page.locator("#result_list")).to_contain_text(f"to Carol Chief ({contact.get_username()})")

    # A document of this morning with its own short times, ignored for real, then decided: the escalation's
    # delivery to Carol ends resolved.
    urgent = services.document_create(
        requester=requester, department=department, title="Server room cooling", approvers=[approver]
    )
    page.goto(f"/admin/workflow/document/{urgent.pk}/change/")
    page.get_by_label("Remind after").fill("00:00:01")
    page.get_by_label("Escalate after").fill("00:00:02")
    page.get_by_role("button", name="Save times").click()
    expect(page.get_by_text("Saved the document's own reminder and escalation times.")).to_be_visible()
    expect(page.locator("#follow-up-rule")).to_contain_text("reminder after 1.0 s (this document's time)")
    services.document_submit(document=urgent, submitted_by=requester)
    due = Task.objects.get(document=urgent).created_at + timedelta(seconds=2)
    assert eventually(lambda: timezone.now() >= due)
    assert services.overdue_tasks_escalate().escalated == 1
    escalation = Delivery.objects.get(recipient=contact, notification__document=urgent)
    assert eventually(lambda: Delivery.objects.get(pk=escalation.pk).status == Delivery.Status.PUSHED)
    services.step_approve(document=urgent, approver=approver)
    page.goto(f"/admin/notifications/delivery/{escalation.pk}/change/")
    timeline = page.locator(".nh-timeline")
    expect(timeline).to_contain_text("Published: Escalated: a task is waiting too long")
    expect(timeline).to_contain_text("Resolved: Done: the task was decided")
    save_doc_screenshot(page, "admin-delivery-resolved-escalation")


def ignored_for_three_days(requester, department: Department, approver) -> Document:
    """A document submitted three days ago whose task nobody touched, and the beat's two rounds at their times
    (the notifications they published dated then too, so that the page reads as it would have)."""
    document = services.document_create(
        requester=requester, department=department, title="Supplier audit trip to Lyon", approvers=[approver]
    )
    services.document_submit(document=document, submitted_by=requester)
    opened = timezone.now() - timedelta(days=3)
    Document.objects.filter(pk=document.pk).update(created_at=opened - timedelta(minutes=5), submitted_at=opened)
    Task.objects.filter(document=document).update(created_at=opened)
    for event, moment in (
        ("NewTask", opened),
        ("TaskReminder", opened + timedelta(days=1)),
        ("TaskEscalated", opened + timedelta(days=2, minutes=3)),
    ):
        if event != "NewTask":
            assert services.overdue_tasks_escalate(now=moment) != services.EscalationRound()
        Notification.objects.filter(document=document, event=event).update(created_at=moment)
    return document
