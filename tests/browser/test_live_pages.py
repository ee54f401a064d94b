"""People at their browsers, on the pages, while things happen elsewhere: what each of them sees, and when.

Every person is a browser context of their own (their own session), signed in through the sign-in page; they
find things by role, label and text, as a person does. With NOTIFYHUB_SCREENSHOTS set, the tests also save the
pictures the README shows.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import (
    CONNECTED,
    bell,
    browser_user,
    connection_status,
    inbox_item,
    mark_page,
    save_doc_screenshot,
    still_the_same_page,
    toast,
)
from tests.support.factories import DepartmentFactory, add_members

pytestmark = pytest.mark.django_db(transaction=True)

# The approver's toast must follow the requester's submit within this (measured in the browsers' own clocks).
TOAST_WITHIN_MS = 1_000

# Set up before the submit: when the toast with `title` enters #toasts, in epoch milliseconds (the page's clock).
RECORD_TOAST_ARRIVAL = """(title) => {
  window.__toastShownAt = null;
  const toasts = document.getElementById("toasts");
  new MutationObserver((records, observer) => {
    if ([...toasts.children].some((toast) => toast.textContent.includes(title))) {
      window.__toastShownAt = performance.timeOrigin + performance.now();
      observer.disconnect();
    }
  }).observe(toasts, { childList: true, subtree: true });
}"""


def responded_at(response) -> float:
    """When the browser had the response's headers, in epoch milliseconds."""
    timing = response.request.timing
    return timing["startTime"] + timing["responseStart"]


def create_document(page: Page, *, title: str, department: str, approvers: str) -> None:
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("Flights and two nights in Lyon for the supplier audit.")
    department_field = page.get_by_label("Department")
    if department_field.evaluate("element => element.tagName") == "SELECT":
        department_field.select_option(label=department)
    else:
        department_field.fill(department)
    page.get_by_label("Approvers").fill(approvers)


def test_the_approver_sees_a_submitted_document_at_once_and_the_requester_sees_the_decision_live(open_person):
    finance = DepartmentFactory(name="Finance")
    alice, bob = (
        browser_user(username="alice", first_name="Alice", last_name="Martin"),
        browser_user(username="bob", first_name="Bob", last_name="Lee"),
    )
    add_members(finance, alice, bob)
    approver = open_person(bob)
    inbox = approver.sign_in("/inbox/")
    expect(connection_status(inbox)).to_have_text(CONNECTED)
    expect(bell(inbox)).to_have_accessible_name("Notifications, no unread")
    requester = open_person(alice)
    document_page = requester.sign_in("/documents/new/")
    title = "Supplier audit in Lyon"
    create_document(document_page, title=title, department="Finance", approvers=bob.get_username())
    save_doc_screenshot(document_page, "web-new-document")
    document_page.get_by_role("button", name="Create draft").click()
    expect(document_page.get_by_role("heading", name=title)).to_be_visible()
    document_url = document_page.url
    expect(connection_status(document_page)).to_have_text(CONNECTED)

    inbox.evaluate(RECORD_TOAST_ARRIVAL, title)
    with document_page.expect_response(lambda r: r.request.method == "POST" and "submit" in r.url) as submitted:
        document_page.get_by_role("button", name="Submit for approval").click()
    submit_answered_at = responded_at(submitted.value)

    expect(toast(inbox, title)).to_be_visible()
    latency = inbox.evaluate("window.__toastShownAt") - submit_answered_at
    print(f"toast shown {latency:.0f} ms after the submit's response")
    assert latency < TOAST_WITHIN_MS
    expect(bell(inbox)).to_have_accessible_name("Notifications, 1 unread")
    save_doc_screenshot(inbox, "web-toast")

    tasks = approver.new_page("/tasks/")
    expect(tasks.locator("#task-list").get_by_role("link", name=title, exact=True)).to_be_visible()
    save_doc_screenshot(tasks, "web-tasks")
    tasks.close()

    expect(document_page).to_have_url(document_url)
    mark_page(document_page)
    toast(inbox, title).get_by_role("link", name="Open").click()
    expect(inbox).to_have_url(document_url)
    expect(inbox.get_by_role("heading", name=title)).to_be_visible()
    inbox.get_by_label("Comment").fill("Fine by me: the audit is due.")
    inbox.get_by_role("button", name="Approve").click()

    expect(document_page.get_by_text("Approved", exact=True).first).to_be_visible()
    expect(document_page.locator("#steps")).to_contain_text("Fine by me: the audit is due.")
    assert still_the_same_page(document_page), "the requester's page was reloaded"
    save_doc_screenshot(document_page, "web-document")


def test_marking_read_in_one_tab_updates_the_other_tab(open_person, publish):
    bob = browser_user(username="bob", first_name="Bob", last_name="Lee")
    publish(bob, "Invoice 2024-118 is overdue", "ACME Corp, 1,240.00 EUR, due 3 days ago.")
    publish(bob, "Quarterly report published", "Q3 figures are in the finance folder.")
    person = open_person(bob)
    sign_in_page = person.new_page("/sign-in/?next=/inbox/")
    save_doc_screenshot(sign_in_page, "web-sign-in")
    first_tab = person.sign_in("/inbox/", page=sign_in_page)
    second_tab = person.new_page("/inbox/")
    for tab in (first_tab, second_tab):
        expect(connection_status(tab)).to_have_text(CONNECTED)
        expect(inbox_item(tab, "Invoice 2024-118 is overdue")).to_contain_text("Unread")
        expect(bell(tab)).to_have_accessible_name("Notifications, 2 unread")
    save_doc_screenshot(second_tab, "web-inbox")
    mark_page(second_tab)

    inbox_item(first_tab, "Invoice 2024-118 is overdue").get_by_role("button", name="Mark as read").click()

    read_item = inbox_item(second_tab, "Invoice 2024-118 is overdue")
    expect(read_item.get_by_role("button", name="Mark as read")).to_have_count(0)
    expect(read_item).not_to_contain_text("Unread")
    expect(bell(second_tab)).to_have_accessible_name("Notifications, 1 unread")
    expect(inbox_item(second_tab, "Quarterly report published")).to_contain_text("Unread")
    assert still_the_same_page(second_tab), "the second tab was reloaded"


def test_signing_in_leads_to_the_inbox_which_reads_at_phone_width(open_person, publish):
    carol = browser_user(username="carol", first_name="Carol", last_name="Diaz")
    publish(carol, "New task: approve “Team offsite”", "Requested by Alice Martin, Finance.")
    person = open_person(carol, viewport={"width": 375, "height": 812})
    sign_in_page = person.new_page("/inbox/")
    expect(sign_in_page).to_have_url(re.compile(r"/sign-in/\?next=/inbox/$"))
    expect(sign_in_page.get_by_role("button", name="Sign in")).to_be_visible()

    inbox = person.sign_in("/inbox/", page=sign_in_page)
    expect(connection_status(inbox)).to_have_text(CONNECTED)
    expect(inbox_item(inbox, "Team offsite")).to_be_visible()
    expect(bell(inbox)).to_be_visible()
    assert inbox.evaluate("document.scrollingElement.scrollWidth") <= 375, "the inbox scrolls sideways on a phone"
    save_doc_screenshot(inbox, "web-inbox-phone")
