"""API bodies over API_MAX_BODY_BYTES get the documented 413 `body_too_large`, refused before they are read.

Through the real servers: the refusal is in the web process's ASGI handler (notifyhub/http.py), ahead of Django,
which would otherwise read a body of any declared size before any check ran. uvicorn hands the request over at
its headers, so a declared length over the limit is answered before the body is sent; daphne (twisted) receives
the whole body first, into a temporary file, and the application still never reads it.
"""

import contextlib
import http.client
import json

import pytest

from tests.support.api import make_publisher
from tests.support.hub_client import access_token

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/notifications/"
SIX_MIB = 6 * 1024 * 1024
TOO_LARGE = {"code": "body_too_large", "message": "The request body is larger than the limit of 65536 bytes."}


def publisher_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {access_token(make_publisher())}"}


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(uvicorn_server):
    connection = http.client.HTTPConnection("127.0.0.1", uvicorn_server.port, timeout=10)
    connection.putrequest("POST", URL)
    for name, value in {**publisher_headers(), "Content-Length": str(SIX_MIB)}.items():
        connection.putheader(name, value)
    connection.endheaders()  # and not one byte of the body: the answer must not wait for it

    response = connection.getresponse()

    assert response.status == 413
    assert json.loads(response.read()) == TOO_LARGE
    connection.close()


def test_a_six_mib_body_gets_413_and_no_traceback(daphne_server):
    """daphne reads the whole body before the application answers; uvicorn answers at the headers (above)."""
    hub_server = daphne_server
    log_start = len(hub_server.log_text())
    body = b'{"event": "Big", "title": "' + b"x" * SIX_MIB + b'"}'

    response = hub_server.request("POST", URL, body=body, headers=publisher_headers())

    assert response.status == 413
    assert json.loads(response.data) == TOO_LARGE
    log = hub_server.log_text()[log_start:]
    assert "Traceback" not in log and "RequestDataTooBig" not in log, log[-2000:]


def test_a_chunked_body_is_counted_and_refused_once_past_the_limit(hub_server):
    def chunks():
        for _ in range(200):  # 2 MiB in all, if it were all read
            yield b"x" * 10_240

    connection = http.client.HTTPConnection("127.0.0.1", hub_server.port, timeout=10)
    # The server may answer and close while chunks are still being sent.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        connection.request("POST", URL, body=chunks(), headers=publisher_headers(), encode_chunked=True)
    response = connection.getresponse()

    assert response.status == 413
    assert json.loads(response.read()) == TOO_LARGE
    connection.close()


def test_a_body_under_the_limit_is_read_as_usual(hub_server):
    response = hub_server.request("POST", URL, body=b'{"title": "no event"}', headers=publisher_headers())

    assert response.status == 400
    assert json.loads(response.data)["fields"]["event"]
