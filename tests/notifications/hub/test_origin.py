"""The Origin rule: a handshake with an Origin must match WS_ALLOWED_ORIGINS; one without is allowed."""

import pytest
from websockets.exceptions import InvalidStatus

from notifications.hub.origin import origin_allowed
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token, open_socket

ALLOWED = ["https://app.example.com", ".example.org", "localhost", "[::1]"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("https://app.example.com", True),
        ("https://APP.example.com:443", True),
        ("http://app.example.com", False),  # a full origin pins the scheme ...
        ("https://app.example.com:8443", False),  # ... and the port
        ("https://evil.example.com", False),
        ("https://app.example.com.evil.net", False),
        ("https://example.org", True),  # a host pattern: any scheme and port
        ("http://portal.example.org:3000", True),
        ("https://example.org.evil.net", False),
        ("http://localhost:5173", True),
        ("http://[::1]:8000", True),
        ("null", False),
        ("", False),
        ("not an origin", False),
        ("https://app.example.com:99999", False),
    ],
)
def test_origin_rule(origin, allowed):
    assert origin_allowed(origin, ALLOWED) is allowed


def test_star_allows_every_origin():
    assert origin_allowed("https://anything.test", ["*"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", [None, "https://app.example.com", "http://portal.example.org:3000"])
def test_allowed_or_missing_origin_connects(hub_server, origin):
    with NativeClient.connect(hub_server, token=access_token(UserFactory()), origin=origin) as client:
        hello, _ = client.start()
    assert hello["type"] == "hello"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://app.example.com", "null"])
def test_foreign_origin_is_refused_at_the_handshake(hub_server, origin):
    with pytest.raises(InvalidStatus) as refused:
        open_socket(hub_server, token=access_token(UserFactory()), origin=origin)
    assert refused.value.response.status_code == 403


def test_unknown_path_is_refused_at_the_handshake(hub_server):
    with pytest.raises(InvalidStatus) as refused:
        open_socket(hub_server, path="/ws/elsewhere/")
    assert refused.value.response.status_code == 403
