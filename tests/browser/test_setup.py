"""The browser tests' set-up works: Chromium reaches the live web process, which serves pages and static files."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_chromium_opens_the_admin_sign_in_page_with_its_static_files(browser, web_server):
    page = browser.new_page()
    stylesheets = []
    page.on("response", lambda response: stylesheets.append(response) if response.url.endswith(".css") else None)

    page.goto(web_server.http_url("/admin/login/"))

    expect(page.get_by_role("link", name="NotifyHub operations")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_editable()
    assert stylesheets, "the admin page links no stylesheet"
    assert all(response.status == 200 for response in stylesheets), [(r.url, r.status) for r in stylesheets]
    page.close()
