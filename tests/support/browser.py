"""Chromium driven by Playwright, against the real web process, for the browser tests (tests/browser/).

Playwright cannot download a browser here: it drives Debian's Chromium at `CHROMIUM_PATH` (default
/usr/bin/chromium), headless. Each simulated person gets a browser context of their own (own cookies, so own
session); `Person` keeps the pages they opened and what each page's console said, for the failure report.

    person = Person.open(browser, server, user)
    page = person.sign_in()                    # through the real sign-in page
    expect(page.get_by_role("status", name="Connection")).to_have_text("Connected")
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import AbstractBaseUser
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, expect

from tests.support.factories import TEST_PASSWORD, UserFactory
from tests.support.servers import REPO_ROOT, ListeningServer, child_environment

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# NOTIFYHUB_SCREENSHOTS=docs/screenshots: the tests also save the pages' pictures the README shows (off by default,
# so that `make test` never rewrites tracked files).
SCREENSHOTS_DIR = os.environ.get("NOTIFYHUB_SCREENSHOTS", "")
# What a person sees within this time is "live"; longer means broken (generous: the machine is shared).
SEEN_WITHIN_MS = 10_000

CONNECTED = "Connected"
RECONNECTING = "Reconnecting…"
OFFLINE = "Offline"


def browser_user(**fields) -> AbstractBaseUser:
    """A user who can sign in on a server process: the test settings' fast MD5 hasher is unknown to the servers,
    which run the production settings, so the password is hashed as production does."""
    user = UserFactory(**fields)
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(TEST_PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    return user


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; as root it cannot sandbox itself."""
    if not Path(CHROMIUM_PATH).is_file():
        raise RuntimeError(f"no Chromium at {CHROMIUM_PATH}: apt-get install chromium, or set CHROMIUM_PATH")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=args)


def collect_static(static_root: Path) -> None:
    """`manage.py collectstatic` into `static_root`, as a deployment does before it starts the web process."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=REPO_ROOT,
        env=child_environment({"STATIC_ROOT": str(static_root)}),
        check=True,
        timeout=120,
    )


# Headless Chromium reports every page "visible" whatever is done to it (a minimized window, a tab in the
# background, Page.setWebLifecycleState): the page is told it is hidden the way a browser tells it, by
# document.visibilityState / document.hidden and a "visibilitychange" event, with the values overridden here.
VISIBILITY_INIT_SCRIPT = """
(() => {
  let state = "visible";
  Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: () => state });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => state === "hidden" });
  window.__setVisibility = (next) => {
    state = next;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""


def set_visibility(page: Page, state: str) -> None:
    """Hide ("hidden") or show ("visible") the page as the browser would (needs `Person.open(..., visibility=True)`)."""
    page.evaluate("(state) => window.__setVisibility(state)", state)


@dataclass
class Person:
    """Somebody at a browser: a context of their own, the pages they opened and what those pages logged."""

    user: AbstractBaseUser
    server: ListeningServer
    context: BrowserContext
    pages: list[Page] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        browser: Browser,
        server: ListeningServer,
        user: AbstractBaseUser,
        *,
        viewport: dict | None = None,
        visibility: bool = False,
    ) -> Person:
        context = browser.new_context(base_url=server.http_url(""), viewport=viewport or {"width": 1280, "height": 800})
        context.set_default_timeout(SEEN_WITHIN_MS)
        if visibility:
            context.add_init_script(VISIBILITY_INIT_SCRIPT)
        person = cls(user=user, server=server, context=context)
        context.on("page", person._watch)
        return person

    def _watch(self, page: Page) -> None:
        number = len(self.pages) + 1
        self.pages.append(page)
        page.on("console", lambda message: self.console.append(f"[page {number}] {message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"[page {number}] uncaught: {error}"))

    def new_page(self, path: str | None = None) -> Page:
        page = self.context.new_page()
        if path is not None:
            page.goto(path)
        return page

    def sign_in(self, next_path: str = "/inbox/", *, page: Page | None = None) -> Page:
        """Sign in through the sign-in page (as a person types it); returns the page, now at `next_path`."""
        page = page or self.new_page()
        page.goto(f"/sign-in/?next={next_path}")
        page.get_by_label("Username").fill(self.user.get_username())
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(self.server.http_url(next_path))
        return page

    def save_failure_report(self, directory: Path, name: str) -> list[Path]:
        """A screenshot of every open page and the console log, in `directory`; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        saved = []
        for number, page in enumerate(self.pages, start=1):
            if page.is_closed():
                continue
            path = directory / f"{name}-page{number}.png"
            try:
                page.screenshot(path=path, full_page=True)
            except Exception as error:  # a failure's report must not hide the failure
                self.console.append(f"[page {number}] no screenshot: {error}")
                continue
            saved.append(path)
        log = directory / f"{name}-console.log"
        log.write_text("\n".join(self.console) + "\n")
        saved.append(log)
        return saved

    def close(self) -> None:
        self.context.close()


class ConnectionCounter:
    """A listener on a stopped server's port that counts who tries to connect (and hangs up on them)."""

    def __init__(self, port: int) -> None:
        self.attempts = 0
        self.socket = socket.create_server(("127.0.0.1", port))
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return  # closed
            self.attempts += 1
            connection.close()

    def close(self) -> None:
        self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        self.thread.join(timeout=5)


CONNECTION_STATUS = '[role="status"][aria-label="Connection"], #connection-status'


def connection_status(page: Page) -> Locator:
    """The header's connection status (role "status", named "Connection")."""
    return page.locator(CONNECTION_STATUS).first


def bell(page: Page) -> Locator:
    """The header's bell: its accessible name says the unread count."""
    return page.get_by_role("link", name="Notifications")


def inbox_item(page: Page, title: str) -> Locator:
    """The inbox list's item with this notification title."""
    return page.locator("#inbox-list > li").filter(has_text=title)


def toast(page: Page, title: str) -> Locator:
    return page.locator("#toasts").locator("> *").filter(has_text=title)


def wait_until(page: Page, condition: Callable[[], bool], *, timeout: float = SEEN_WITHIN_MS / 1000) -> bool:
    """True as soon as `condition()` is, False if it was not within `timeout` s. Waits on the page, not with a
    sleep: Playwright's sync API delivers the page's events (console, websockets) only while one of its calls runs."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(100)
    return True


def watch_texts(page: Page, selector: str) -> None:
    """Record every text the element at `selector` shows from now on (read back with `watched_texts`)."""
    page.evaluate(
        """(selector) => {
          const element = document.querySelector(selector);
          window.__watchedTexts = [element.textContent.trim()];
          new MutationObserver(() => window.__watchedTexts.push(element.textContent.trim()))
            .observe(element, { childList: true, characterData: true, subtree: true });
        }""",
        selector,
    )


def watched_texts(page: Page) -> list[str]:
    return page.evaluate("window.__watchedTexts")


def mark_page(page: Page) -> None:
    """Mark the loaded document: `still_the_same_page` is false once it was reloaded or navigated away."""
    page.evaluate("window.__notReloaded = true")


def still_the_same_page(page: Page) -> bool:
    return page.evaluate("window.__notReloaded === true")


def save_doc_screenshot(page: Page, name: str, *, locator: Locator | None = None) -> None:
    """Save the page (or one element) as docs' `<name>.png`, only when NOTIFYHUB_SCREENSHOTS names a directory."""
    if not SCREENSHOTS_DIR:
        return
    directory = Path(SCREENSHOTS_DIR)
    if not directory.is_absolute():
        directory = REPO_ROOT / directory
    directory.mkdir(parents=True, exist_ok=True)
    target = locator or page
    target.screenshot(path=directory / f"{name}.png", animations="disabled")
