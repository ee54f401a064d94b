"""A page's connection through what happens to servers and tokens: a restart, a page hidden meanwhile, tokens that
expire every few seconds. Each test runs a web process of its own (stopped and started on the same port); what
is published meanwhile goes through the API of the shared web process, another process of the same host."""

import pytest
from playwright.sync_api import expect

from tests.support.browser import (
    CONNECTED,
    CONNECTION_STATUS,
    OFFLINE,
    RECONNECTING,
    ConnectionCounter,
    browser_user,
    connection_status,
    inbox_item,
    save_doc_screenshot,
    set_visibility,
    toast,
    wait_until,
    watch_texts,
    watched_texts,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The library backs off with full jitter up to 30 s: a page connects again within one maximum delay and a bit.
RECONNECTED_WITHIN_MS = 40_000
# How long a hidden page is watched for connection attempts: a page still retrying makes its first within the
# initial delay (1 s), so a few seconds without one mean it stopped.
HIDDEN_WATCH_MS = 4_000


def expect_exactly_once(page, title: str, *, after: str) -> None:
    """`title` is in the inbox list once and was toasted once, also after the later notification `after` arrived
    (so a replay or a late duplicate of `title` would have come before it)."""
    expect(inbox_item(page, after)).to_be_visible()
    expect(inbox_item(page, title)).to_have_count(1)
    expect(page.locator("#toasts").get_by_text(title)).to_have_count(1)


def test_a_page_reconnects_to_a_restarted_web_process_and_shows_what_was_published_meanwhile_once(
    open_person, publish, start_server, web_env
):
    server = start_server("browser-restart", env=web_env)
    bob = browser_user(username="bob", first_name="Bob", last_name="Lee")
    inbox = open_person(bob, server=server).sign_in("/inbox/")
    status = connection_status(inbox)
    expect(status).to_have_text(CONNECTED)
    watch_texts(inbox, CONNECTION_STATUS)

    server.stop()  # SIGTERM, as a deployment restarts it
    expect(status).to_have_text(RECONNECTING)
    save_doc_screenshot(inbox, "web-reconnecting")
    publish(bob, "Published during the restart", "Stored, then replayed on reconnect.")
    start_server("browser-restart", env=web_env, port=server.port)

    expect(status).to_have_text(CONNECTED, timeout=RECONNECTED_WITHIN_MS)
    expect(inbox_item(inbox, "Published during the restart")).to_be_visible()
    expect(toast(inbox, "Published during the restart")).to_be_visible()
    publish(bob, "Published after the restart")
    expect_exactly_once(inbox, "Published during the restart", after="Published after the restart")
    texts = watched_texts(inbox)
    assert texts[0] == CONNECTED and texts[-1] == CONNECTED, texts
    assert RECONNECTING in texts, texts


def test_a_hidden_page_stops_reconnecting_and_catches_up_when_shown(open_person, publish, start_server, web_env):
    server = start_server("browser-hidden", env=web_env)
    bob = browser_user()
    inbox = open_person(bob, server=server, visibility=True).sign_in("/inbox/")
    status = connection_status(inbox)
    expect(status).to_have_text(CONNECTED)

    set_visibility(inbox, "hidden")
    server.stop()
    expect(status).to_have_text(OFFLINE)
    counter = ConnectionCounter(server.port)
    try:
        inbox.wait_for_timeout(HIDDEN_WATCH_MS)  # not a synchronisation: the window in which nothing may happen
        assert counter.attempts == 0, f"a hidden page tried to connect {counter.attempts} times"
        expect(status).to_have_text(OFFLINE)
    finally:
        counter.close()
    start_server("browser-hidden", env=web_env, port=server.port)
    publish(bob, "Published while the page was hidden")

    set_visibility(inbox, "visible")
    expect(status).to_have_text(CONNECTED, timeout=RECONNECTED_WITHIN_MS)
    expect(inbox_item(inbox, "Published while the page was hidden")).to_be_visible()
    publish(bob, "Published once the page was shown")
    expect_exactly_once(inbox, "Published while the page was hidden", after="Published once the page was shown")


def test_an_expiring_access_token_is_replaced_without_a_visible_disconnect(open_person, publish, start_server, web_env):
    lifetime = 6
    server = start_server("browser-short-tokens", env={**web_env, "WEB_ACCESS_TOKEN_LIFETIME": str(lifetime)})
    bob = browser_user()
    inbox = open_person(bob, server=server).sign_in("/inbox/")
    status = connection_status(inbox)
    expect(status).to_have_text(CONNECTED)
    watch_texts(inbox, CONNECTION_STATUS)

    def tokens_fetched() -> int:
        return server.log_text().count('"POST /web/token/')

    first = tokens_fetched()
    assert wait_until(inbox, lambda: tokens_fetched() >= first + 2, timeout=3 * lifetime), server.log_text()[-3000:]
    publish(bob, "Published after the second rotation")
    expect(inbox_item(inbox, "Published after the second rotation")).to_be_visible()
    expect(toast(inbox, "Published after the second rotation")).to_have_count(1)
    assert wait_until(inbox, lambda: tokens_fetched() >= first + 3, timeout=3 * lifetime), server.log_text()[-3000:]

    expect(inbox_item(inbox, "Published after the second rotation")).to_have_count(1)
    expect(status).to_have_text(CONNECTED)
    assert set(watched_texts(inbox)) == {CONNECTED}, watched_texts(inbox)
