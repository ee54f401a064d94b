"""The web process: `python -m notifyhub.web` serves NotifyHub under the ASGI server ASGI_SERVER names,
from WEB_CONCURRENCY processes under uvicorn."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notifyhub.logging import REDACTED
from notifyhub.web import server_command
from tests.support.api import make_publisher
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token, until_notification
from tests.support.servers import REPO_ROOT, WebProcess, child_environment, post_json


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_both_servers_serve_the_one_application_on_the_given_address(server):
    argv = server_command(server, bind="10.1.2.3", port=8123)
    assert argv[:3] == [sys.executable, "-m", server]
    assert "notifyhub.asgi:application" in argv
    assert "--proxy-headers" not in argv  # the application reads them, from trusted proxies only
    assert "10.1.2.3" in argv and "8123" in argv


def test_uvicorn_is_told_not_to_read_proxy_headers_itself():
    """It would by default, from 127.0.0.1: notifyhub/proxies.py decides, the same way under both servers."""
    assert "--no-proxy-headers" in server_command("uvicorn", bind="127.0.0.1", port=8000)


@pytest.mark.parametrize("processes", [1, 3])
def test_uvicorn_runs_as_many_workers_as_asked(processes):
    argv = server_command("uvicorn", bind="127.0.0.1", port=8000, processes=processes)
    assert argv[argv.index("--workers") + 1] == str(processes)


def test_uvicorn_refuses_permessage_deflate_unless_asked():
    assert "--ws-per-message-deflate false" in " ".join(server_command("uvicorn", bind="127.0.0.1", port=8000))
    argv = server_command("uvicorn", bind="127.0.0.1", port=8000, per_message_deflate=True)
    assert "--ws-per-message-deflate true" in " ".join(argv)


def test_daphne_is_never_asked_for_more_than_one_process():
    with pytest.raises(ValueError, match="one process"):
        server_command("daphne", bind="127.0.0.1", port=8000, processes=2)


def run_web(overrides: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "notifyhub.web"],
        cwd=REPO_ROOT,
        env=child_environment(overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"ASGI_SERVER": "tomcat"}, "ASGI_SERVER='tomcat' must be one of: daphne, uvicorn"),
        ({"ASGI_SERVER": "daphne", "WEB_CONCURRENCY": "2"}, "WEB_CONCURRENCY=2 needs ASGI_SERVER=uvicorn"),
        ({"ASGI_SERVER": "uvicorn", "WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY=0 must be at least 1"),
        (
            {"ASGI_SERVER": "daphne", "WS_PER_MESSAGE_DEFLATE": "true"},
            "WS_PER_MESSAGE_DEFLATE=true needs ASGI_SERVER=uvicorn",
        ),
        (
            {"TRUSTED_PROXIES": "127.0.0.1, nginx"},
            "TRUSTED_PROXIES: 'nginx' is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8, ::1)",
        ),
    ],
)
def test_a_bad_server_setting_stops_with_one_line(overrides, line):
    result = run_web(overrides)
    assert result.returncode != 0
    [printed] = result.stderr.strip().splitlines()
    assert printed.startswith(f"NotifyHub configuration error: {line}")


@pytest.mark.django_db(transaction=True)
def test_asgi_server_uvicorn_runs_uvicorn(tmp_path):
    web = WebProcess("web", env={"ASGI_SERVER": "uvicorn"}, log_path=tmp_path / "web.log").start()
    try:
        assert web.request("GET", "/healthz").status == 200
        assert "Uvicorn running" in web.log_text()
        assert len(worker_pids(web)) == 1
    finally:
        web.stop()


def worker_pids(web: WebProcess) -> set[int]:
    """The processes that logged starting a server (uvicorn's workers, or the one server process)."""
    return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", web.log_text())}


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.django_db(transaction=True)
def test_web_concurrency_serves_from_that_many_uvicorn_workers_and_stops_them_with_the_server(tmp_path):
    web = WebProcess("web-2", env={"ASGI_SERVER": "uvicorn", "WEB_CONCURRENCY": "2"}, log_path=tmp_path / "web.log")
    web.start(ready=lambda: web.answers_http() and len(worker_pids(web)) == 2)
    workers = worker_pids(web)
    try:
        assert {parent_of(pid) for pid in workers} == {web.process.pid}
        assert all(web.request("GET", "/healthz").status == 200 for _ in range(10))
    finally:
        web.stop()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


@pytest.mark.django_db(transaction=True)
def test_with_two_workers_every_client_gets_what_is_published_through_either_and_no_token_is_logged(
    tmp_path, redis_client
):
    web = WebProcess(
        "web-2-delivery", env={"ASGI_SERVER": "uvicorn", "WEB_CONCURRENCY": "2"}, log_path=tmp_path / "web.log"
    )
    web.start(ready=lambda: web.answers_http() and len(worker_pids(web)) == 2)
    publisher = make_publisher()
    recipients = [UserFactory() for _ in range(6)]
    tokens = [access_token(user) for user in recipients]
    clients = []
    try:
        for token in tokens:  # the kernel hands each connection to one worker or the other
            client = NativeClient.connect(web, token=token, via="query")  # as browsers send it
            client.start()
            clients.append(client)
        for user, client in zip(recipients, clients, strict=True):
            published = post_json(
                web,
                "/api/notifications/",
                {"event": "Ping", "title": "t", "recipients": {"users": [user.pk]}},
                token=access_token(publisher),
            )
            assert published.status == 201, published.body
            assert client.frames_until(until_notification(published.body["id"]))[-1]["event"] == "Ping"
    finally:
        for client in clients:
            client.close()
        web.stop()
    log = web.log_text()
    assert log.count(f"access_token={REDACTED}") >= len(tokens)  # every worker scrubs its access log
    assert not any(token in log for token in tokens)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("setting", "negotiated"), [(None, []), ("true", ["permessage-deflate"])])
def test_the_compression_browsers_offer_is_accepted_only_when_configured(tmp_path, setting, negotiated):
    """Browsers offer permessage-deflate; uvicorn accepts it by default, at ~40 KiB and ~40% more CPU a connection."""
    from websockets.sync.client import connect

    env = {"ASGI_SERVER": "uvicorn", **({"WS_PER_MESSAGE_DEFLATE": setting} if setting else {})}
    web = WebProcess("web-deflate", env=env, log_path=tmp_path / "web.log").start()
    try:
        url = f"ws://127.0.0.1:{web.port}/ws/notifications/?access_token={access_token(UserFactory())}"
        with connect(url) as websocket:  # offers permessage-deflate, as browsers do
            assert [extension.name for extension in websocket.protocol.extensions] == negotiated
            assert json.loads(websocket.recv(timeout=10))["type"] == "hello"
    finally:
        web.stop()
