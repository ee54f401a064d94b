"""notifyhub/proxies.py: the client is the socket's peer unless a proxy in TRUSTED_PROXIES names another, the same
under daphne and uvicorn, for HTTP and WebSocket alike, and no proxy header gets past it."""

import ipaddress
import json

import pytest

from notifications.services import notification_publish
from notifyhub.proxies import resolve_client
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token
from tests.support.servers import WebProcess

TRUSTED = [ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8")]


def scope(peer: str | None = "127.0.0.1", *headers: tuple[str, str], kind: str = "http") -> dict:
    return {
        "type": kind,
        "scheme": "http" if kind == "http" else "ws",
        "client": [peer, 51234] if peer else None,  # daphne gives a list, uvicorn a tuple
        "headers": [(b"host", b"hub.example.com"), *((name.encode(), value.encode()) for name, value in headers)],
    }


def client_of(resolved: dict) -> str | None:
    return resolved["client"][0] if resolved["client"] else None


def test_an_untrusted_peer_is_the_client_whatever_it_says_and_its_proxy_headers_go():
    forged = scope(
        "203.0.113.5",
        ("x-forwarded-for", "198.51.100.1"),
        ("x-real-ip", "198.51.100.2"),
        ("x-forwarded-proto", "https"),
    )
    resolved = resolve_client(forged, TRUSTED)
    assert (client_of(resolved), resolved["scheme"]) == ("203.0.113.5", "http")
    assert resolved["headers"] == [(b"host", b"hub.example.com")]
    assert forged["headers"][1:], "the server's scope is copied, not changed"


def test_nothing_is_trusted_by_default_not_even_loopback():
    resolved = resolve_client(scope("127.0.0.1", ("x-forwarded-for", "198.51.100.1")), [])
    assert client_of(resolved) == "127.0.0.1"
    assert resolved["headers"] == [(b"host", b"hub.example.com")]


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        ("198.51.100.1", "198.51.100.1"),
        ("203.0.113.66, 198.51.100.1", "198.51.100.1"),  # what the client wrote itself is never believed
        ("203.0.113.66, 198.51.100.1, 10.1.2.3", "198.51.100.1"),  # trusted hops are skipped
        ("10.9.9.9, 10.1.2.3", "10.9.9.9"),  # every hop trusted: the leftmost
        ("not-an-address, 10.1.2.3", "10.1.2.3"),  # an unreadable hop ends the walk at the last readable one
        ("not-an-address", "127.0.0.1"),
        ("198.51.100.1:4711", "198.51.100.1"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_x_forwarded_for_from_a_trusted_peer_is_walked_from_the_right(forwarded_for, client):
    assert client_of(resolve_client(scope("127.0.0.1", ("x-forwarded-for", forwarded_for)), TRUSTED)) == client


def test_several_x_forwarded_for_headers_are_one_list():
    resolved = resolve_client(
        scope("10.0.0.2", ("x-forwarded-for", "198.51.100.1"), ("x-forwarded-for", "198.51.100.9, 10.0.0.3")), TRUSTED
    )
    assert client_of(resolved) == "198.51.100.9"


def test_x_real_ip_names_the_client_when_there_is_no_x_forwarded_for():
    assert client_of(resolve_client(scope("127.0.0.1", ("x-real-ip", "198.51.100.4")), TRUSTED)) == "198.51.100.4"
    both = scope("127.0.0.1", ("x-real-ip", "198.51.100.4"), ("x-forwarded-for", "198.51.100.5"))
    assert client_of(resolve_client(both, TRUSTED)) == "198.51.100.5"


def test_a_trusted_peer_on_a_dual_stack_socket_is_trusted():
    resolved = resolve_client(scope("::ffff:10.0.0.2", ("x-forwarded-for", "198.51.100.1")), TRUSTED)
    assert client_of(resolved) == "198.51.100.1"


@pytest.mark.parametrize(
    ("kind", "proto", "scheme"),
    [
        ("http", "https", "https"),
        ("http", "HTTP", "http"),
        ("websocket", "https", "wss"),
        ("websocket", "wss", "wss"),
        ("http", "http, https", "https"),  # the last value: what the trusted peer itself says
        ("http", "gopher", "http"),
    ],
)
def test_x_forwarded_proto_from_a_trusted_peer_sets_the_scheme(kind, proto, scheme):
    resolved = resolve_client(scope("127.0.0.1", ("x-forwarded-proto", proto), kind=kind), TRUSTED)
    assert resolved["scheme"] == (scheme if kind == "http" else scheme.replace("http", "ws"))
    assert client_of(resolved) == "127.0.0.1"


def test_a_peer_without_an_address_is_never_trusted():
    assert client_of(resolve_client(scope(None, ("x-forwarded-for", "198.51.100.1")), TRUSTED)) is None


# --- The Procfile's web line, under each server ----------------------------------------------------------------

SERVERS = ["daphne", "uvicorn"]
# Two token requests per address a minute; the per-username limit out of the way (each request names a new user).
LIMITS = {"API_RATE_AUTH": "2/minute", "API_RATE_AUTH_USERNAME": "100/minute", "WS_RATE_BURST": "2"}


def start_web(tmp_path, server: str, **env: str) -> WebProcess:
    environment = {"ASGI_SERVER": server, **LIMITS, **env}
    return WebProcess(f"web-{server}", env=environment, log_path=tmp_path / "web.log").start()


@pytest.fixture(params=SERVERS)
def untrusting_web(request, tmp_path, redis_client, django_db_setup):
    web = start_web(tmp_path, request.param)  # TRUSTED_PROXIES unset: the default
    yield web
    web.stop()


@pytest.fixture(params=SERVERS)
def web_behind_proxies(request, tmp_path, redis_client, django_db_setup):
    web = start_web(tmp_path, request.param, TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    yield web
    web.stop()


class TokenRequests:
    """Token requests with a wrong password, each for a new username (401 unless throttled)."""

    def __init__(self, web: WebProcess) -> None:
        self.web = web
        self.sent = 0

    def status(self, **headers: str) -> int:
        self.sent += 1
        body = json.dumps({"username": f"nobody-{self.sent}", "password": "wrong"}).encode()
        headers = {"Content-Type": "application/json", **{name.replace("_", "-"): v for name, v in headers.items()}}
        return self.web.request("POST", "/api/auth/token/", body=body, headers=headers).status


def test_a_forged_x_forwarded_for_from_an_untrusted_peer_gets_no_fresh_budget(untrusting_web):
    tokens = TokenRequests(untrusting_web)
    assert [tokens.status(), tokens.status()] == [401, 401]

    assert tokens.status(X_Forwarded_For="203.0.113.7") == 429
    assert tokens.status(X_Real_IP="203.0.113.8") == 429
    assert tokens.status(X_Forwarded_For="203.0.113.9", X_Forwarded_Proto="https") == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(web_behind_proxies):
    tokens = TokenRequests(web_behind_proxies)
    assert [tokens.status(X_Forwarded_For="198.51.100.1") for _ in range(3)] == [401, 401, 429]

    assert tokens.status(X_Forwarded_For="198.51.100.2") == 401
    # A client writing an address of its own in front of what the proxy appends still counts as itself ...
    assert tokens.status(X_Forwarded_For="203.0.113.66, 198.51.100.1") == 429
    # ... also behind a second trusted proxy ...
    assert tokens.status(X_Forwarded_For="198.51.100.1, 10.1.2.3") == 429
    # ... and X-Real-IP names the client when the proxy sends only that.
    assert tokens.status(X_Real_IP="198.51.100.3") == 401


def flood(web: WebProcess, **headers: str) -> None:
    client = NativeClient.connect(web, token=access_token(UserFactory()), headers=headers)
    client.start()
    for _ in range(10):
        client.send(type="ping")
    assert client.closed().code == 1008


@pytest.mark.django_db(transaction=True)
def test_a_websocket_handshake_from_behind_a_trusted_proxy_has_the_forwarded_client(web_behind_proxies):
    flood(web_behind_proxies, **{"X-Forwarded-For": "203.0.113.66, 198.51.100.23"})
    assert "from 198.51.100.23 closed for flooding" in web_behind_proxies.log_text()


@pytest.mark.django_db(transaction=True)
def test_a_websocket_handshake_from_an_untrusted_peer_is_its_peer(untrusting_web):
    flood(untrusting_web, **{"X-Forwarded-For": "198.51.100.24"})
    log = untrusting_web.log_text()
    assert "from 127.0.0.1 closed for flooding" in log
    assert "198.51.100.24" not in log


def next_page_link(web: WebProcess, **headers: str) -> str:
    """The `next` link of a one-item inbox page (the API builds it from the request's scheme and host)."""
    user = UserFactory()
    for title in ("first", "second"):
        notification_publish(event="Ping", title=title, user_ids=[user.pk])
    response = web.request(
        "GET", "/api/notifications/?page_size=1", headers={"Authorization": f"Bearer {access_token(user)}", **headers}
    )
    assert response.status == 200, response.data
    return json.loads(response.data)["next"]


@pytest.mark.django_db(transaction=True)
def test_links_the_api_builds_have_the_scheme_a_trusted_proxy_says(web_behind_proxies):
    assert next_page_link(web_behind_proxies, **{"X-Forwarded-Proto": "https"}).startswith("https://")


@pytest.mark.django_db(transaction=True)
def test_an_untrusted_peer_cannot_claim_https(untrusting_web):
    assert next_page_link(untrusting_web, **{"X-Forwarded-Proto": "https"}).startswith("http://")
