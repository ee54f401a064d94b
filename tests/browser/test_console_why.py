"""An operator asks the console why a user was not notified, and reads the answer to the second."""

import pytest
from playwright.sync_api import expect

from notifications.console.times import time_of_day
from notifications.models import Delivery
from tests.support.browser import browser_user, save_doc_screenshot, wait_until
from tests.support.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_operator_reads_why_an_offline_user_without_a_device_was_not_notified(open_person, publish):
    bob = UserFactory(username="bob.why", first_name="Bob", last_name="Smith")
    old_phone = DeviceFactory(user=bob, active=False, deactivated_reason="unregistered")
    published = publish(bob, "Travel approval", "Your trip to Lyon was approved.")
    operator = open_person(browser_user(username="ops.why", is_staff=True, is_superuser=True))
    page = operator.new_page("/admin/login/")
    page.get_by_label("Username").fill("ops.why")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Log out").or_(page.get_by_role("button", name="Log out"))).to_be_visible()

    # Offline and no active device: the worker's push round fails it `no_devices` (the log backend is not needed).
    delivery = Delivery.objects.get(notification_id=published["id"], recipient=bob)
    assert wait_until(page, lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.FAILED)
    delivery.refresh_from_db()
    page.goto(f"/admin/console/why/?user=bob.why&notification={published['id']}")

    expect(
        page.get_by_text(
            "Bob Smith (bob.why) was not notified: offline (last seen: unknown); there was no active device to push "
            f"to (failed at {time_of_day(delivery.failed_at)}): their device had been deactivated: Android device "
            f"{old_phone.pk} (unregistered)."
        )
    ).to_be_visible()
    expect(page.get_by_text("Offline (last seen: unknown).")).to_be_visible()
    expect(page.get_by_role("link", name="The delivery and its attempts")).to_have_attribute(
        "href", f"/admin/notifications/delivery/{delivery.pk}/change/"
    )
    save_doc_screenshot(page, "console-why")
