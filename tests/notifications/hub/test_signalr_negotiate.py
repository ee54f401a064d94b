"""POST /hubs/workflow/negotiate: what each client version gets, auth, CSRF, exact routing, CORS for browsers."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from tests.support.factories import UserFactory
from tests.support.hub_client import access_token

pytestmark = pytest.mark.django_db

URL = "/hubs/workflow/negotiate"
TRANSPORTS = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
URL_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")
APP_ORIGIN = "https://app.example.com"


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)  # the JS client sends no CSRF token: the view must not need one


@pytest.fixture(autouse=True)
def allowed_origins(settings) -> None:
    settings.WS_ALLOWED_ORIGINS = [APP_ORIGIN]


def negotiate(client: Client, user=None, *, query: str = "?negotiateVersion=1", token: str | None = None, **headers):
    if token is None and user is not None:
        token = access_token(user)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(URL + query, headers=headers)


def test_the_url_is_exact_and_named(client):
    assert reverse("signalr-negotiate") == URL
    assert client.post(URL + "/").status_code == 404  # never a slash redirect, which would turn POST into GET


def test_version_1_gets_a_connection_id_and_token_and_websockets_only(client):
    response = negotiate(client, UserFactory())

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"negotiateVersion", "connectionId", "connectionToken", "availableTransports"}
    assert body["negotiateVersion"] == 1
    assert body["availableTransports"] == TRANSPORTS
    assert URL_SAFE_TOKEN.match(body["connectionId"])
    assert URL_SAFE_TOKEN.match(body["connectionToken"])
    assert body["connectionId"] != body["connectionToken"]


def test_no_version_means_0_which_has_no_connection_token(client):
    """pysignalr and signalrcore send no negotiateVersion and use connectionId as the id."""
    body = negotiate(client, UserFactory(), query="").json()

    assert body == {"negotiateVersion": 0, "connectionId": body["connectionId"], "availableTransports": TRANSPORTS}


def test_later_versions_get_1_and_stateful_reconnect_is_never_granted(client):
    body = negotiate(client, UserFactory(), query="?negotiateVersion=9&useStatefulReconnect=true").json()

    assert body["negotiateVersion"] == 1
    assert "useStatefulReconnect" not in body


def test_every_negotiation_gets_new_ids(client):
    user = UserFactory()
    first, second = negotiate(client, user).json(), negotiate(client, user).json()

    assert first["connectionId"] != second["connectionId"]
    assert first["connectionToken"] != second["connectionToken"]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?negotiateVersion=one", "The client requested an invalid protocol version 'one'."),
        ("?negotiateVersion=-1", "The client requested version '-1', but the server does not support this version."),
    ],
)
def test_a_malformed_version_is_a_400_with_the_reason(client, query, error):
    response = negotiate(client, UserFactory(), query=query)

    assert (response.status_code, response.json()) == (400, {"error": error})


def test_token_is_taken_from_the_header_only(client):
    """Clients send it there; daphne's access log would print a query-string token unscrubbed."""
    response = client.post(f"{URL}?negotiateVersion=1&access_token={access_token(UserFactory())}")

    assert (response.status_code, response.json()) == (401, {"error": "Unauthorized: missing token"})


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda user: None, "missing token"),
        (lambda user: "garbage", "invalid token"),
        (lambda user: str(RefreshToken.for_user(user)), "invalid token"),
        (lambda user: access_token(user, lifetime=timedelta(seconds=-1)), "token expired"),
    ],
    ids=["missing", "garbage", "refresh-token", "expired"],
)
def test_unacceptable_tokens_get_401(client, make_token, reason):
    token = make_token(UserFactory())

    response = negotiate(client, token=token) if token else negotiate(client)

    assert response.status_code == 401
    assert response.json() == {"error": f"Unauthorized: {reason}"}
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_inactive_users_get_401(client):
    user = UserFactory(is_active=False)

    response = negotiate(client, user)

    assert (response.status_code, response.json()) == (401, {"error": "Unauthorized: user unknown or inactive"})


def test_other_methods_get_405(client):
    response = client.get(URL, headers={"Authorization": f"Bearer {access_token(UserFactory())}"})

    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"


# --- CORS (browsers) ------------------------------------------------------------------------------------------


def test_allowed_origin_is_echoed_with_credentials(client):
    response = negotiate(client, UserFactory(), Origin=APP_ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]


def test_preflight_allows_the_headers_the_js_client_sends(client):
    response = client.options(
        URL + "?negotiateVersion=1",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-requested-with, x-signalr-user-agent",
        },
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response["Access-Control-Allow-Headers"] == "authorization, x-requested-with, x-signalr-user-agent"
    assert int(response["Access-Control-Max-Age"]) > 0


def test_preflight_never_echoes_requested_headers(client):
    """The allowed headers are a fixed list, whatever a request asks for: nothing of it is reflected."""
    response = client.options(
        URL,
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization\r\nx-evil: 1",
        },
    )

    assert response.status_code == 200
    assert "x-evil" not in response["Access-Control-Allow-Headers"]
    assert "\n" not in response["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example.net", "null", "http://app.example.com"])
def test_other_origins_are_refused_without_cors_headers(client, origin):
    preflight = client.options(URL, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    post = negotiate(client, UserFactory(), Origin=origin)

    for response in (preflight, post):
        assert response.status_code == 403
        assert response.json() == {"error": "Origin not allowed."}
        assert "Access-Control-Allow-Origin" not in response


def test_no_origin_header_needs_no_cors(client):
    """Native apps, Node, pysignalr and .NET send no Origin."""
    response = negotiate(client, UserFactory())

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
