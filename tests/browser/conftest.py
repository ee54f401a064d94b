"""The browser tests' live stack: Chromium (Playwright) against the real web process, Celery worker and beat.

Shared by every test of this package and stopped after its last one (package scope: a worker left running would
take the tasks later modules queue for their own). Each test makes its own users, so tests do not see each
other's notifications; the restart tests start web processes of their own (`start_server`).

Static files are served as in production: `collectstatic` into a directory of this run (STATIC_ROOT), served by
whitenoise from the web process with DEBUG off. (WHITENOISE_USE_FINDERS would serve the source directories,
skipping the step a deployment depends on: a page importing a file collectstatic does not collect would pass
here and break in production.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings
from playwright.sync_api import Browser, expect, sync_playwright
from rest_framework_simplejwt.tokens import AccessToken

from tests.support.api import make_publisher
from tests.support.browser import SEEN_WITHIN_MS, Person, collect_static, launch_chromium
from tests.support.celery_stack import CeleryStack
from tests.support.presence_registry import settle_presence_registry
from tests.support.servers import HubServer, child_environment, post_json

# The pages' origin is the server's own (http://127.0.0.1:<port>): the hub accepts its WebSocket handshakes.
PAGE_ORIGINS = "127.0.0.1"


@pytest.fixture(scope="package")
def static_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    collect_static(root)
    return root


@pytest.fixture(scope="package")
def web_env(static_root) -> dict[str, str]:
    """The environment of the browser tests' web processes (a restart test adds to it)."""
    return {"STATIC_ROOT": str(static_root), "WS_ALLOWED_ORIGINS": PAGE_ORIGINS}


@pytest.fixture(scope="package")
def celery_stack(django_db_setup, tmp_path_factory) -> Iterator[CeleryStack]:
    """The Procfile's worker, sweeper and beat on the test database and Redis (pushes only logged: no phones here)."""
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.flushdb()
    settle_presence_registry(broker)
    environment = child_environment({"NOTIFY_PUSH_BACKEND": "log", "FAKE_FCM_URL": "http://127.0.0.1:9/unused"})
    stack = CeleryStack.start(environment=environment, log_dir=tmp_path_factory.mktemp("celery"))
    yield stack
    stack.stop()
    broker.flushdb()
    broker.close()


@pytest.fixture(scope="package")
def web_server(start_server, web_env, celery_stack) -> Iterator[HubServer]:
    """The web process (daphne, as the Procfile runs it) serving pages, static files and the hub."""
    server = start_server("browser", env=web_env)
    yield server
    server.stop()


@pytest.fixture(scope="package", autouse=True)
def sync_database_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps its asyncio loop marked running in this thread (it runs in a greenlet), and
    Django refuses database calls where a loop runs. The test thread itself is synchronous: allow them, in this
    package only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="package")
def browser(sync_database_beside_playwright) -> Iterator[Browser]:
    expect.set_options(timeout=SEEN_WITHIN_MS)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.browser_failed = True
    return report


@pytest.fixture
def open_person(request, browser, tmp_path) -> Iterator[Callable[..., Person]]:
    """`open_person(user, server=..., **options)`: a person at their own browser context; closed after the test.

    If the test failed, every open page's screenshot and the console log are saved in the test's tmp_path.
    """
    people: list[Person] = []

    def open_(user, *, server: HubServer | None = None, **options) -> Person:
        person = Person.open(browser, server or request.getfixturevalue("web_server"), user, **options)
        people.append(person)
        return person

    yield open_
    for person in people:
        if getattr(request.node, "browser_failed", False):
            saved = person.save_failure_report(tmp_path / "browser", person.user.get_username())
            print("\n".join(["", f"browser report of {person.user.get_username()}:", *map(str, saved)]))
        person.close()


@pytest.fixture
def publish(web_server) -> Callable[..., dict]:
    """`publish(user, title, body="")`: an ERP-like publisher posts a notification for `user` to the REST API of the
    shared web process (also while a test's own web process is down: another process of the same host)."""
    token = str(AccessToken.for_user(make_publisher()))

    def publish_(user, title: str, body: str = "") -> dict:
        payload = {"event": "Reminder", "title": title, "body": body, "recipients": {"users": [user.get_username()]}}
        response = post_json(web_server, "/api/notifications/", payload, token=token)
        assert response.status == 201, response
        return response.body

    return publish_
