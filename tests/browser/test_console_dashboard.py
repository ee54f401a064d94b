"""An operator at the operations console: the admin's index is the dashboard, with numbers and drawn charts; a
failure's row leads to its explanation; the presence page shows a person whose inbox is open.

With NOTIFYHUB_SCREENSHOTS set, saves docs/screenshots/console-dashboard.png and console-presence.png.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import CONNECTED, browser_user, connection_status, save_doc_screenshot
from tests.support.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

# The dashboard refreshes every 10 seconds: a failure that lands just after the page loaded shows within that.
REFRESHED_WITHIN_MS = 25_000


def test_the_dashboard_shows_a_failure_and_leads_to_its_explanation(open_person, publish):
    operator = browser_user(
        username="ops-olga", first_name="Olga", last_name="Operator", is_staff=True, is_superuser=True
    )
    alice = browser_user(username="dash-alice", first_name="Alice", last_name="Archer")
    bruno = browser_user(username="dash-bruno", first_name="Bruno", last_name="Baker")  # offline, no device

    reader = open_person(alice)
    inbox = reader.sign_in("/inbox/")
    expect(connection_status(inbox)).to_have_text(CONNECTED)
    publish(alice, "Expense report approved")
    publish(alice, "Travel request needs your review")
    publish(bruno, "Budget approval overdue")  # nobody to reach: no connection, no device → failed

    admin = open_person(operator, viewport={"width": 1280, "height": 1500}).new_page("/admin/login/?next=/admin/")
    admin.get_by_label("Username").fill(operator.get_username())
    admin.get_by_label("Password").fill(TEST_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_role("heading", name="Delivery dashboard")).to_be_visible()
    assert admin.url.endswith("/admin/")

    failure_link = admin.locator('tbody[data-rows="recent_failures"] a').first
    expect(failure_link).to_be_visible(timeout=REFRESHED_WITHIN_MS)
    failures = admin.locator('tbody[data-rows="recent_failures"]')
    expect(failures).to_contain_text("Bruno Baker")
    expect(failures).to_contain_text("Budget approval overdue")
    expect(failures).to_contain_text("No active device to push to")
    expect(admin.locator('[data-stat="published"]')).not_to_have_text("0")
    expect(admin.locator('.console-card [data-stat="presence.connections"]')).not_to_have_text("0")
    expect(admin.locator("#console-dashboard")).to_have_attribute("data-charts-drawn", "true")
    assert admin.evaluate("typeof window.Chart") == "function"
    assert admin.locator("canvas#console-series-chart").bounding_box()["height"] > 100
    expect(admin.get_by_role("heading", name="Site administration")).to_be_visible()
    save_doc_screenshot(admin, "console-dashboard")

    href = failure_link.get_attribute("href")
    assert href.startswith("/admin/console/why/?user=dash-bruno&notification=")
    failure_link.click()
    expect(admin).to_have_url(re.compile(r"/admin/console/why/\?user=dash-bruno&notification="))

    admin.goto("/admin/console/presence/")
    row = admin.get_by_role("row").filter(has_text="Alice Archer")
    expect(row).to_contain_text("native")
    expect(admin.get_by_role("row").filter(has_text="Bruno Baker")).to_have_count(0)
    save_doc_screenshot(admin, "console-presence")
    row.get_by_role("link", name="Alice Archer").click()
    expect(admin.get_by_text("1 live connection")).to_be_visible()
    save_doc_screenshot(admin, "console-presence-user")
