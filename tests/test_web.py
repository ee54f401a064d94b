"""The web process: `python -m notifyhub.web` serves NotifyHub under the ASGI server ASGI_SERVER names."""

import http.client
import socket
import subprocess
import sys

import pytest

from notifyhub.web import server_command
from tests.support.servers import REPO_ROOT, ServerProcess, child_environment


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_both_servers_serve_the_one_application_on_the_given_address(server):
    argv = server_command(server, bind="10.1.2.3", port=8123)
    assert argv[:3] == [sys.executable, "-m", server]
    assert "notifyhub.asgi:application" in argv
    assert "--proxy-headers" in argv
    assert "10.1.2.3" in argv and "8123" in argv


def test_an_unknown_server_stops_with_one_line():
    environment = child_environment({"ASGI_SERVER": "tomcat"})
    result = subprocess.run(
        [sys.executable, "-m", "notifyhub.web"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "NotifyHub configuration error: ASGI_SERVER='tomcat' must be one of: daphne, uvicorn"
    ]


@pytest.mark.django_db(transaction=True)
def test_asgi_server_uvicorn_runs_uvicorn(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = child_environment({"ASGI_SERVER": "uvicorn", "PORT": str(port), "WEB_BIND": "127.0.0.1"})
    web = ServerProcess("web", [sys.executable, "-m", "notifyhub.web"], env=environment, log_path=tmp_path / "web.log")

    def health() -> int | None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            return connection.getresponse().status
        except OSError:
            return None

    web.start(ready=lambda: health() is not None)
    try:
        assert health() == 200
        assert "Uvicorn running" in web.log_text()
    finally:
        web.stop()
