"""The JavaScript client (clients/js/) against a real hub: its Node tests, one pytest test per test file.

Each file runs under Node's own test runner (`node --test`) with a real hub server
serving the hub (`hub_server`), the test database holding a publisher, and a
small service in this process that makes users, documents and tokens for the
Node side (tests/support/test_data_service.py). Node's output is shown when a
file fails.
"""

import os
import re
import shutil
import subprocess

import pytest

from notifications.models import ActionCallback
from tests.support.factories import UserFactory
from tests.support.servers import REPO_ROOT
from tests.support.test_data_service import TestDataService

CLIENT_DIR = REPO_ROOT / "clients" / "js"
TEST_FILES = sorted((CLIENT_DIR / "test").glob("*.test.js"))
NODE_TIMEOUT = 240


@pytest.fixture
def publisher(db):
    """A superuser: it may publish to anyone through the REST API (no publishing scope needed), and declare
    actions (its callback goes nowhere: no worker calls it here)."""
    user = UserFactory(username="js-publisher", is_superuser=True, is_staff=True)
    ActionCallback.objects.create(publisher=user, url="http://127.0.0.1:9/actions")
    return user


@pytest.fixture(scope="session")
def quick_heartbeat_server(start_server):
    """A second hub process whose hello asks for a ping every second (the heartbeat test waits less)."""
    return start_server("js-quick-heartbeat", env={"NOTIFY_PRESENCE_HEARTBEAT": "1"})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("test_file", TEST_FILES, ids=[path.name for path in TEST_FILES])
def test_javascript_client(test_file, hub_server, redis_client, publisher, request):
    node = shutil.which("node")
    quick = request.getfixturevalue("quick_heartbeat_server") if test_file.name == "heartbeat.test.js" else None
    assert node, "Node.js 20.10 or later is needed for the JavaScript client's tests"
    with TestDataService() as test_data:
        environment = {
            **os.environ,
            "NOTIFYHUB_HTTP": hub_server.http_url("").rstrip("/"),
            "NOTIFYHUB_WS": hub_server.ws_url(),
            "NOTIFYHUB_TEST_DATA": test_data.url,
            "NOTIFYHUB_PUBLISHER": publisher.username,
        }
        if quick is not None:
            environment["NOTIFYHUB_QUICK_HEARTBEAT_HTTP"] = quick.http_url("").rstrip("/")
        result = subprocess.run(
            # Node 20 has WebSocket behind this flag (on by default from Node 22); the tests pass it to the client.
            [node, "--experimental-websocket", "--test", "--test-reporter=spec", str(test_file)],
            cwd=CLIENT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test {test_file.name} failed:\n{output}"
    passed = re.search(r"^\S* ?pass (\d+)$", output, re.MULTILINE)
    assert passed and int(passed.group(1)) > 0, f"no Node test passed in {test_file.name}:\n{output}"
