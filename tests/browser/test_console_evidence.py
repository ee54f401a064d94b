"""An operator in the admin: publishes through the form, lands on the notification's page with its recipients,
follows a delivery's timeline, reads a document's timeline, and finds no Save or Delete on the evidence.

With NOTIFYHUB_SCREENSHOTS set, saves console-publish, console-notification, console-delivery-timeline,
console-document-timeline and console-delivery-resolved.
"""

import uuid

import pytest
from playwright.sync_api import Page, expect

from notifications.models import Delivery, DeliveryAttempt, Notification
from notifications.services import notification_publish, notification_retract
from tests.support.browser import TEST_PASSWORD, browser_user, save_doc_screenshot
from tests.support.factories import DepartmentFactory, DeviceFactory, add_members
from workflow import services
from workflow.models import Document

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in_to_the_admin(page: Page, username: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Delivery dashboard")).to_be_visible()


def choose_user(page: Page, username: str) -> None:
    """Pick a user in the autocomplete (select2) of the Users field, as a person types a name."""
    page.locator("#id_users + .select2").click()
    page.keyboard.type(username)
    page.locator(".select2-results__option", has_text=username).click()


def test_an_operator_publishes_and_follows_the_deliveries(open_person):
    run = uuid.uuid4().hex[:6]
    operator = browser_user(
        username=f"ops-{run}", first_name="Olga", last_name="Operator", is_staff=True, is_superuser=True
    )
    ada = browser_user(username=f"ada-{run}", first_name="Ada", last_name="Lovelace")
    DeviceFactory(user=ada, platform="android", app_install_id=f"pixel-8-{run}")  # pushes only logged here
    bob = browser_user(username=f"bob-{run}", first_name="Bob", last_name="Builder")
    page = open_person(operator).new_page()
    sign_in_to_the_admin(page, operator.get_username())

    page.goto("/admin/notifications/notification/")
    page.get_by_role("link", name="Publish a notification").click()
    expect(page.get_by_role("heading", name="Publish a notification")).to_be_visible()
    page.get_by_label("Event").fill("InvoiceOverdue")
    page.get_by_label("Title").fill("Invoice 2026-118 is overdue")
    page.get_by_label("Body").fill("Acme Ltd has not paid invoice 2026-118 (EUR 4,200), due 28 Nov.")
    page.get_by_label("Priority").select_option(label="High")
    choose_user(page, ada.get_username())
    choose_user(page, bob.get_username())
    save_doc_screenshot(page, "console-publish")
    page.get_by_role("button", name="Publish").click()

    expect(page.get_by_text("Published to 2 recipients.")).to_be_visible()
    recipients = page.locator("#recipients")
    expect(recipients).to_contain_text(f"Ada Lovelace ({ada.get_username()})")
    expect(recipients).to_contain_text(f"Bob Builder ({bob.get_username()})")
    expect(page.get_by_role("heading", name="Where the deliveries are")).to_be_visible()
    notification = Notification.objects.get(title="Invoice 2026-118 is overdue")
    assert notification.published_by_id == operator.pk
    assert_no_save_or_delete(page)

    recipients.get_by_role("row", name=ada.get_username()).get_by_role("link", name="Timeline").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    timeline = page.locator(".nh-timeline")
    expect(timeline).to_contain_text("Published: Invoice 2026-118 is overdue")
    expect(timeline).to_contain_text(f"published by Olga Operator ({operator.get_username()})")
    expect(timeline).to_contain_text("Delivery created for Ada Lovelace")
    save_doc_screenshot(page, "console-delivery-timeline")
    assert_no_save_or_delete(page)

    delivery = Delivery.objects.get(notification=notification, recipient=ada)
    attempt = DeliveryAttempt.objects.create(delivery=delivery, channel="ws", outcome="no_connection")
    for url in (
        f"/admin/notifications/delivery/{delivery.pk}/change/",
        f"/admin/notifications/deliveryattempt/{attempt.pk}/change/",
        f"/admin/notifications/notification/{notification.pk}/change/",
    ):
        page.goto(url)
        expect(page.locator("#content")).to_be_visible()
        assert_no_save_or_delete(page)
    # Back on the notification's page (the last one), by now with the pushes the worker made meanwhile.
    expect(page.locator("#recipients")).to_contain_text(ada.get_username())
    save_doc_screenshot(page, "console-notification")


def assert_no_save_or_delete(page: Page) -> None:
    for name in ("Save", "Save and continue editing", "Save and add another"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Delete", exact=True)).to_have_count(0)


def test_a_documents_page_tells_its_story(open_person):
    run = uuid.uuid4().hex[:6]
    operator = browser_user(username=f"ops-{run}", is_staff=True, is_superuser=True)
    requester = browser_user(username=f"grace-{run}", first_name="Grace", last_name="Hopper")
    first = browser_user(username=f"linus-{run}", first_name="Linus", last_name="Torvalds")
    second = browser_user(username=f"barbara-{run}", first_name="Barbara", last_name="Liskov")
    department = DepartmentFactory(code=f"fin-{run}", name="Finance")
    add_members(department, requester)
    document = services.document_create(
        requester=requester, department=department, title="Supplier audit trip to Lyon", approvers=[first, second]
    )
    services.document_submit(document=document, submitted_by=requester)
    services.step_approve(document=document, approver=first, comment="Within the travel budget.")
    page = open_person(operator).new_page()
    sign_in_to_the_admin(page, operator.get_username())

    page.goto(f"/admin/workflow/document/{document.pk}/change/")

    timeline = page.locator(".nh-timeline").first
    expect(timeline).to_contain_text("Created by Grace Hopper")
    expect(timeline).to_contain_text("Step 1 approved by Linus Torvalds")
    expect(timeline).to_contain_text("Within the travel budget.")
    expect(timeline).to_contain_text("Task opened for step 2: Barbara Liskov")
    expect(page.get_by_role("heading", name="Notifications about this document")).to_be_visible()
    assert Document.objects.get(pk=document.pk).notifications.exists()
    save_doc_screenshot(page, "console-document-timeline")
    assert_no_save_or_delete(page)


def test_a_retracted_notification_reads_as_resolved_on_its_pages(open_person):
    run = uuid.uuid4().hex[:6]
    operator = browser_user(username=f"ops-{run}", is_staff=True, is_superuser=True)
    ada = browser_user(username=f"ada-{run}", first_name="Ada", last_name="Lovelace")
    notification = notification_publish(
        event="InvoiceOverdue", title="Invoice 2026-118 is overdue", user_ids=[ada.pk], published_by_id=operator.pk
    )
    notification_retract(notification_id=notification.pk, by=operator)
    delivery = Delivery.objects.get(notification=notification)
    page = open_person(operator).new_page()
    sign_in_to_the_admin(page, operator.get_username())

    page.goto(f"/admin/notifications/notification/{notification.pk}/change/")
    expect(page.locator(".nh-facts")).to_contain_text("Retracted by its publisher")
    expect(page.locator("#recipients")).to_contain_text("Resolved")
    page.goto(f"/admin/notifications/delivery/{delivery.pk}/change/")

    timeline = page.locator(".nh-timeline")
    expect(timeline).to_contain_text("Resolved: Retracted by its publisher")
    expect(timeline).to_contain_text("Nothing more is sent or pushed")
    save_doc_screenshot(page, "console-delivery-resolved")
