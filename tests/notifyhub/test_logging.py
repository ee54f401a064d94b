"""Tokens never reach a log line: the scrubbing filter, its wiring, and real servers' logs."""

import json
import logging
import time
import uuid

import pytest
from django.conf import settings

from notifyhub.logging import REDACTED, ScrubTokensFilter, scrub_tokens
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token
from tests.support.waiting import eventually

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f'127.0.0.1:5 - "WebSocket /ws/notifications/?access_token={TOKEN}" [accepted]',
            f'127.0.0.1:5 - "WebSocket /ws/notifications/?access_token={REDACTED}" [accepted]',
        ),
        (f"GET /x?a=1&access_token={TOKEN}&b=2", f"GET /x?a=1&access_token={REDACTED}&b=2"),
        (f"url=%2Fws%3Faccess_token%3D{TOKEN}", f"url=%2Fws%3Faccess_token%3D{REDACTED}"),
        (f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {REDACTED}"),
        (f"refresh_token={TOKEN}", f"refresh_token={REDACTED}"),
        ("GET /api/notifications/?page=2", "GET /api/notifications/?page=2"),
    ],
)
def test_scrub_tokens(line, expected):
    assert scrub_tokens(line) == expected


def test_filter_rewrites_formatted_message_and_keeps_the_record():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s"', ("1.2.3.4", "GET", f"/?access_token={TOKEN}"), None
    )

    assert ScrubTokensFilter().filter(record) is True
    assert record.getMessage() == f'1.2.3.4 - "GET /?access_token={REDACTED}"'


def test_every_handler_and_uvicorns_loggers_are_scrubbed():
    assert settings.LOGGING["handlers"]["console"]["filters"][0] == "scrub_tokens"
    for name in ("uvicorn", "uvicorn.access"):
        assert settings.LOGGING["loggers"][name] == {
            "handlers": ["console"],
            "level": settings.LOG_LEVEL,
            "propagate": False,
        }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_query_string_token_is_not_in_the_server_log(request, kind):
    server = request.getfixturevalue(f"{kind}_server")
    token = access_token(UserFactory())

    with NativeClient.connect(server, token=token, via="query") as client:
        hello, _ = client.start()

    assert hello["type"] == "hello"
    assert eventually(lambda: "/ws/notifications/" in server.log_text())  # the connection was logged ...
    assert token not in server.log_text()  # ... without its token
    if kind == "uvicorn":
        assert f"access_token={REDACTED}" in server.log_text()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_a_client_error_is_one_line_in_the_server_log(request, kind):
    """The server's access line, not also Django's "Not Found: ..." (nor, under DEBUG, Django's own copy)."""
    server = request.getfixturevalue(f"{kind}_server")
    path = f"/api/no-such-{uuid.uuid4().hex}/"

    assert server.request("GET", path).status == 404

    assert eventually(lambda: path in server.log_text())
    time.sleep(0.5)  # a second line would follow at once
    assert sum(path in line for line in server.log_text().splitlines()) == 1


@pytest.mark.django_db(transaction=True)
def test_json_log_lines_are_objects_with_the_token_scrubbed(start_server):
    server = start_server("json-log", env={"LOG_FORMAT": "json"})
    token = access_token(UserFactory())
    with NativeClient.connect(server, token=token, via="query") as client:
        client.start()
    path = f"/api/no-such-{uuid.uuid4().hex}/?access_token={token}"
    assert server.request("GET", path).status == 404

    def our_lines() -> list[dict]:
        lines = [line for line in server.log_text().splitlines() if line.startswith("{")]
        return [json.loads(line) for line in lines]

    assert eventually(lambda: any("/api/no-such-" in entry["message"] for entry in our_lines()))
    access = next(entry for entry in our_lines() if "/api/no-such-" in entry["message"])
    assert access["logger"] == f"{server.kind}.access" and access["level"] == "INFO" and access["time"]
    connected = {"daphne": "WSCONNECT /ws/", "uvicorn": '"WebSocket /ws/'}[server.kind]  # each server's words
    connects = [entry["message"] for entry in our_lines() if connected in entry["message"]]
    assert connects and connects[0].startswith("127.0.0.1")
    assert token not in server.log_text()
