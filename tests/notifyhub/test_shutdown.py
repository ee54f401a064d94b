"""SIGTERM to the web process under publishing load: every request answered, every socket told, a prompt exit.

The Procfile's web line (`python -m notifyhub.web`) under each server, with a
native and a SignalR client connected and threads publishing to both users
through the API without pause. After SIGTERM the process must exit within a
few seconds, on its own (not through the watchdog's last resort); no request
may be answered 5xx, and a request the server took must get its real answer (a
refused or reset connection after the stop is fine); the native client must
get the error frame and 1012, the SignalR client a Close with allowReconnect;
and every publish answered 201 must have its rows.
"""

import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from notifications.models import Delivery, Notification
from notifyhub import shutdown
from tests.support.api import make_publisher
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token
from tests.support.servers import REPO_ROOT, WebProcess, child_environment
from tests.support.signalr_client import SignalRSocket
from tests.support.threads import Worker
from tests.support.waiting import eventually

PUBLISHING_THREADS = 4
# Generous for a shared 2-core machine; a process that hangs never gets there.
EXITS_WITHIN_SECONDS = 10


class Publisher(threading.Thread):
    """Publishes to `recipient_ids` back to back until told to stop; keeps every request's outcome by title."""

    def __init__(self, web: WebProcess, token: str, recipient_ids: list[int], name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.web, self.token, self.recipient_ids = web, token, recipient_ids
        self.stopping = threading.Event()
        self.answers: dict[str, tuple[int, dict | None]] = {}  # title -> (status, body)
        self.unanswered: dict[str, str] = {}  # title -> what happened instead (refused, reset, ...)
        self.answered_at: dict[str, tuple[float, float]] = {}  # title -> (sent, answered), time.monotonic()

    def run(self) -> None:
        for number in itertools.count():
            if self.stopping.is_set():
                return
            title = f"{self.name}-{number}"
            body = json.dumps({"event": "Ping", "title": title, "recipients": {"users": self.recipient_ids}})
            connection = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=EXITS_WITHIN_SECONDS + 5)
            sent_at = time.monotonic()
            try:
                connection.request(
                    "POST",
                    "/api/notifications/",
                    body=body.encode(),
                    headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
                )
                response = connection.getresponse()
                data = response.read()
                self.answers[title] = (response.status, json.loads(data) if data else None)
                self.answered_at[title] = (sent_at, time.monotonic())
            except (OSError, http.client.HTTPException) as error:
                self.unanswered[title] = type(error).__name__
                if isinstance(error, ConnectionRefusedError):
                    self.stopping.wait(0.05)  # the server stopped listening: do not spin
            finally:
                connection.close()

    def created(self) -> int:
        return sum(1 for status, _ in list(self.answers.values()) if status == 201)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_sigterm_under_publishing_load_answers_every_request_tells_every_socket_and_exits(
    server, tmp_path, redis_client
):
    web = WebProcess(
        f"web-sigterm-{server}",
        env={"ASGI_SERVER": server, "API_RATE_PUBLISH": "1000000/second"},
        log_path=tmp_path / "web.log",
    ).start()
    publisher_user = make_publisher()
    native_user, signalr_user = UserFactory(), UserFactory()
    publishers = []
    try:
        native = NativeClient.connect(web, token=access_token(native_user))
        native.start()
        signalr = SignalRSocket.started(web, token=access_token(signalr_user))
        # Read both sockets all along (a client that stops reading is closed 1013), up to the server's close.
        native_closed = Worker(native.closed, timeout=60)
        signalr_closed = Worker(signalr.closed, timeout=60)
        native_closed.start()
        signalr_closed.start()
        token = access_token(publisher_user)
        publishers = [
            Publisher(web, token, [native_user.pk, signalr_user.pk], name=f"publisher{index}")
            for index in range(PUBLISHING_THREADS)
        ]
        for publisher in publishers:
            publisher.start()
        assert eventually(lambda: sum(publisher.created() for publisher in publishers) >= 20, timeout=30)

        web.process.send_signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        try:
            web.process.wait(timeout=EXITS_WITHIN_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{server} still running {EXITS_WITHIN_SECONDS} s after SIGTERM:\n{web.log_text()[-3000:]}")
        exited_after = time.monotonic() - signalled_at
    finally:
        for publisher in publishers:
            publisher.stopping.set()
        for publisher in publishers:
            publisher.join(EXITS_WITHIN_SECONDS + 10)
        web.stop()

    log = web.log_text()
    assert shutdown.DEADLINE_LOG_LINE not in log, f"the watchdog had to end it after {exited_after:.1f} s"
    answers = {title: answer for publisher in publishers for title, answer in publisher.answers.items()}
    unanswered = {title: what for publisher in publishers for title, what in publisher.unanswered.items()}
    statuses = {status for status, _ in answers.values()}
    assert statuses <= {201}, f"answers other than 201: {sorted(statuses)}\n{log[-3000:]}"
    # The signal did reach requests in flight (sent before it, answered after it), and they got their 201.
    in_flight = [
        title
        for publisher in publishers
        for title, (sent_at, answered_at) in publisher.answered_at.items()
        if sent_at < signalled_at < answered_at
    ]
    assert in_flight, "no request was in flight at SIGTERM"
    # Every request the server took got its answer: none without one left a notification behind.
    assert not Notification.objects.filter(title__in=list(unanswered)).exists(), unanswered
    created_ids = [body["id"] for status, body in answers.values() if status == 201]
    assert Notification.objects.filter(pk__in=created_ids).count() == len(created_ids)
    assert Delivery.objects.filter(notification_id__in=created_ids).count() == 2 * len(created_ids)

    closed = native_closed.outcome(timeout=30)
    assert (closed.code, closed.reason) == (1012, "server restarting")
    assert closed.frames[-1] == {"type": "error", "code": "server_shutdown", "message": "server restarting"}
    closed = signalr_closed.outcome(timeout=30)
    assert closed.frames[-1] == {"type": 7, "allowReconnect": True}
    assert closed.code == 1000


def test_the_exit_deadline_ends_a_process_that_would_not_exit_and_says_why():
    """The last resort: whatever a stuck thread waits for, the process is gone `seconds` after SIGTERM."""
    script = (
        "import logging, threading\n"
        "from notifyhub import shutdown\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "shutdown.exit_deadline_start(0.5)\n"
        "threading.Event().wait()  # as a request thread blocked on a stopped event loop\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**child_environment(), "PYTHONPATH": str(REPO_ROOT), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == shutdown.DEADLINE_EXIT_CODE
    assert shutdown.DEADLINE_LOG_LINE in result.stderr
