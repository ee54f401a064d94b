"""An operator lists an event type for users to choose about, and reads why a user's push waits for quiet hours."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from notifications.models import Delivery, DeliveryAttempt, EventTypePolicy, UserPreferences
from tests.support.browser import browser_user, save_doc_screenshot, wait_until
from tests.support.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def admin_page(open_person, username: str, **options) -> Page:
    operator = open_person(browser_user(username=username, is_staff=True, is_superuser=True), **options)
    page = operator.new_page("/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Log out").or_(page.get_by_role("button", name="Log out"))).to_be_visible()
    return page


def test_the_operator_lists_an_event_type_with_its_defaults(open_person):
    page = admin_page(open_person, "ops.policy", viewport={"width": 1600, "height": 800})
    page.goto("/admin/notifications/eventtypepolicy/add/")
    page.get_by_label("Event").fill("InvoiceOverdue")
    page.get_by_label("Description").fill("An invoice of your department is overdue")
    page.get_by_label("Default push").uncheck()
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("was added successfully")).to_be_visible()
    expect(page.locator("#result_list").get_by_role("link", name="InvoiceOverdue")).to_be_visible()
    policy = EventTypePolicy.objects.get()
    assert (policy.event, policy.default_push, policy.mandatory) == ("InvoiceOverdue", False, False)
    save_doc_screenshot(page, "admin-event-type-policies")

    # The workflow's events are always mandatory: the form says so and saves nothing.
    page.goto("/admin/notifications/eventtypepolicy/add/")
    page.get_by_label("Event").fill("NewTask")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("NewTask is a workflow event: it is always mandatory.")).to_be_visible()
    assert EventTypePolicy.objects.count() == 1


def test_the_operator_reads_that_a_push_waits_for_the_users_quiet_hours(open_person, publish):
    bob = UserFactory(username="bob.quiet", first_name="Bob", last_name="Quiet")
    DeviceFactory(user=bob)
    now = datetime.now(UTC)
    UserPreferences.objects.create(
        user=bob,
        time_zone="UTC",
        quiet_hours_start=(now - timedelta(hours=1)).time(),
        quiet_hours_end=(now + timedelta(hours=2)).time(),
    )
    published = publish(bob, "Travel approval", "Your trip to Lyon was approved.")
    page = admin_page(open_person, "ops.quiet")

    # Offline: the worker's push round finds bob inside his quiet hours and holds the push.
    assert wait_until(
        page,
        lambda: DeliveryAttempt.objects.filter(
            delivery__notification_id=published["id"], outcome=DeliveryAttempt.Outcome.DEFERRED
        ).exists(),
    )
    page.goto(f"/admin/console/why/?user=bob.quiet&notification={published['id']}")

    expect(
        page.get_by_text("Bob Quiet (bob.quiet) has not been pushed yet: it came due inside their quiet hours")
    ).to_be_visible()
    delivery = Delivery.objects.get(notification_id=published["id"])
    assert delivery.status == Delivery.Status.PENDING
    save_doc_screenshot(page, "console-why-quiet-hours")
