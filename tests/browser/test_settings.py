"""A person sets their quiet hours and event type choices on the settings page, and is told what went wrong."""

from datetime import time

import pytest
from playwright.sync_api import expect

from notifications.models import EventPreference, EventTypePolicy, UserPreferences
from tests.support.browser import browser_user, save_doc_screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_person_sets_quiet_hours_turns_a_push_off_and_mutes_an_event_type(open_person):
    EventTypePolicy.objects.create(event="InvoiceOverdue", description="An invoice of your department is overdue")
    EventTypePolicy.objects.create(event="erp.Digest", description="The weekly ERP digest", default_push=False)
    EventTypePolicy.objects.create(event="FireDrill", description="Building safety", mandatory=True)
    dave = browser_user(username="dave", first_name="Dave", last_name="Engineer")
    page = open_person(dave).sign_in("/inbox/")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Notification settings")).to_be_visible()
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Quiet hours from").fill("22:00")
    page.get_by_label("until").fill("07:00")
    page.get_by_label("Urgent notifications may push during quiet hours").check()
    page.get_by_label("Push for Invoice overdue").select_option(label="No push")
    page.get_by_label("Show or mute erp.Digest").select_option(label="Mute")
    # Mandatory ones offer no choice.
    expect(page.get_by_role("row", name="New task")).to_contain_text("Mandatory")
    expect(page.get_by_role("row", name="Fire drill")).to_contain_text("Mandatory")
    expect(page.get_by_label("Push for Fire drill")).to_have_count(0)
    save_doc_screenshot(page, "web-settings", locator=page.locator(".settings-card"))
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label("Quiet hours from")).to_have_value("22:00")
    expect(page.get_by_label("Push for Invoice overdue")).to_have_value("off")
    stored = UserPreferences.objects.get(user=dave)
    assert (stored.time_zone, stored.quiet_hours_start, stored.quiet_hours_end) == ("Europe/Berlin", time(22), time(7))
    assert stored.urgent_breaks_through is True
    assert sorted(EventPreference.objects.filter(user=dave).values_list("event", "push", "muted")) == [
        ("InvoiceOverdue", False, None),
        ("erp.Digest", None, True),
    ]

    page.get_by_label("until").fill("22:00")
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_text("The end must differ from the start.")).to_be_visible()
    save_doc_screenshot(page, "web-settings-error", locator=page.locator(".settings-card fieldset").first)
    assert UserPreferences.objects.get(user=dave).quiet_hours_end == time(7)
