"""Real NotifyHub server processes for end-to-end tests.

The tests talk to what production runs: a daphne (or uvicorn) process
serving `notifyhub.asgi:application`, on 127.0.0.1 and a port the OS picked,
sharing the pytest-django *test* database and the test Redis database with
the test process. Anything the test commits is visible to the server, and
anything the test publishes through `notifications.layer` reaches the
server's consumers through Redis.

Use the fixtures in `tests/conftest.py`:

- `hub_server` (session scope): one server for the whole run, of production's
  kind (settings.ASGI_SERVER), or TEST_ASGI_SERVER's.
- `daphne_server`, `uvicorn_server` (session scope) and `each_server` (both in
  turn): for what the two servers must do alike.
- `start_server` (session scope): a factory for more, e.g. a second process
  on the same Redis, or one with other settings:
  `start_server("fast-heartbeat", env={"NOTIFY_PRESENCE_HEARTBEAT": "1"})`,
  `start_server("daphne", kind="daphne")`. Servers it starts are stopped at
  the end of the run.

Tests using a server must commit their data: mark them
`@pytest.mark.django_db(transaction=True)`. Talk to a server with
`server.ws_url(path, **query)` (a WebSocket client; the native protocol's is
`tests.support.hub_client.NativeClient`), `server.request(method, path, ...)`
or `post_json(server, path, payload, token=...)` for its HTTP API, and read
what it logged with `server.log_text()`.

`WebProcess` runs the Procfile's web line itself (`python -m notifyhub.web`,
e.g. with `ASGI_SERVER=uvicorn` and `WEB_CONCURRENCY=2`) and has the same client.

For other processes (a Celery worker, a benchmark driver), `child_environment()`
gives the environment that points a NotifyHub process at the same database
and Redis, and `ServerProcess` runs and stops one with its output in a log
file, e.g.::

    worker = ServerProcess(
        "worker",
        [sys.executable, "-m", "celery", "--app", "notifyhub", "worker", "--pool", "solo"],
        env=child_environment(),
        log_path=tmp_path / "worker.log",
    )
    worker.start(ready=lambda: "ready" in worker.log_text())
    ...
    worker.stop()
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, urlencode

from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
NATIVE_PATH = "/ws/notifications/"


def database_url() -> str:
    """The URL of the database the tests use right now (after pytest-django set up the test database)."""
    database = settings.DATABASES["default"]
    credentials = quote(database.get("USER") or "", safe="")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return f"postgres://{credentials}@{host}:{port}/{database['NAME']}"


def child_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a NotifyHub process that shares the test database, Redis and signing key."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "DJANGO_"))}
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
            "ENV_FILE": str(REPO_ROOT / "no-env-file-for-test-servers"),
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    environment.update(overrides or {})
    return environment


class ServerProcess:
    """A child process of the test run: output to a log file, stopped by its own PID."""

    def __init__(
        self, name: str, command: list[str], *, env: dict[str, str], log_path: Path, pass_fds: tuple[int, ...] = ()
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.pass_fds = pass_fds
        self.process: subprocess.Popen | None = None

    def start(self, *, ready: Callable[[], bool], timeout: float = 30) -> None:
        """Start the process and wait until `ready()` is true; raise with the log if it dies or times out."""
        self.spawn()
        self.wait_until(ready, timeout=timeout)

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=self.pass_fds,
            )

    def wait_until(self, ready: Callable[[], bool], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ListeningServer(ServerProcess):
    """A server process listening on 127.0.0.1:`self.port`, with a client for its HTTP and WebSocket endpoints."""

    port: int

    def answers_http(self) -> bool:
        try:
            self.request("GET", "/healthz", timeout=2)
        except OSError:
            return False
        return True

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None, timeout: float = 30
    ) -> http.client.HTTPResponse:
        """One HTTP request to the server; returns the response with its body read into `.data`."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            response.data = response.read()
            return response
        finally:
            connection.close()

    def ws_url(self, path: str = NATIVE_PATH, **query: str) -> str:
        """ws://127.0.0.1:<port><path>?<query>"""
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?{urlencode(query)}" if query else "")

    def http_url(self, path: str = "/") -> str:
        """http://127.0.0.1:<port><path>"""
        return f"http://127.0.0.1:{self.port}{path}"


class HubServer(ListeningServer):
    """`notifyhub.asgi:application` under daphne (as in the Procfile) or uvicorn, on a port the OS picked.

    The test process binds the listening socket and hands it over (`--fd`), so
    the port is known before the server starts and no other process can take it.
    """

    def __init__(
        self,
        name: str,
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        kind: str = "daphne",
        port: int = 0,
    ):
        # port: 0 lets the OS pick; a stopped server's port brings a "restarted" server where clients reconnect.
        self.socket = socket.create_server(("127.0.0.1", port), backlog=2048)
        self.port = self.socket.getsockname()[1]
        fd = self.socket.fileno()
        self.kind = kind
        if kind == "daphne":
            command = [sys.executable, "-m", "daphne", "--fd", str(fd), "notifyhub.asgi:application"]
        elif kind == "uvicorn":
            command = [
                sys.executable,
                "-m",
                "uvicorn",
                "--fd",
                str(fd),
                "--no-server-header",
                "--no-proxy-headers",  # as the Procfile's web line runs it: proxy headers are the application's
                "--ws-per-message-deflate",  # as the Procfile's web line runs it (WS_PER_MESSAGE_DEFLATE)
                "false",
                "notifyhub.asgi:application",
            ]
        else:
            raise ValueError(f"unknown server kind {kind!r}")
        super().__init__(name, command, env=child_environment(env), log_path=log_path, pass_fds=(fd,))

    def start(self, *, ready: Callable[[], bool] | None = None, timeout: float = 30) -> HubServer:
        self.spawn()
        self.socket.close()  # the child owns the port now: if it dies, clients are refused, not left hanging
        self.wait_until(ready or self.answers_http, timeout=timeout)
        return self

    def stop(self) -> None:
        super().stop()
        self.socket.close()


class WebProcess(ListeningServer):
    """`python -m notifyhub.web` (the Procfile's web line) on a free port, its settings from `env`."""

    def __init__(self, name: str, *, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        environment = child_environment({"WEB_BIND": "127.0.0.1", "PORT": str(self.port), **(env or {})})
        super().__init__(name, [sys.executable, "-m", "notifyhub.web"], env=environment, log_path=log_path)

    def start(self, *, ready: Callable[[], bool] | None = None, timeout: float = 30) -> WebProcess:
        super().start(ready=ready or self.answers_http, timeout=timeout)
        return self


class JSONResponse(NamedTuple):
    status: int
    body: dict | list | None


def post_json(server: ListeningServer, path: str, payload: dict, *, token: str | None = None) -> JSONResponse:
    """POST a JSON body (as a bearer of `token`) to a running server's API."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = server.request("POST", path, body=json.dumps(payload).encode(), headers=headers)
    return JSONResponse(response.status, json.loads(response.data) if response.data else None)
