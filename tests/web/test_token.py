"""POST /web/token/: the session's user as a short-lived access token for the hub, only with the CSRF token."""

from datetime import UTC, datetime

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from tests.support.api import assert_error
from tests.support.factories import TEST_PASSWORD, UserFactory
from tests.support.hub_client import NativeClient

URL = "/web/token/"


def post(client: Client, **headers):
    """POST with no body, as the page's fetch() sends it."""
    return client.generic("POST", URL, **headers)


def csrf_client(user=None) -> tuple[Client, str]:
    """A client that enforces CSRF like a browser, signed in through the page when `user` is given, and the CSRF
    token its pages carry."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        page = client.get("/sign-in/")
        token = page.cookies["csrftoken"].value
        response = client.post(
            "/sign-in/", {"username": user.username, "password": TEST_PASSWORD}, HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == 302, response.content[:300]
    client.get("/sign-in/" if user is None else "/inbox/")
    return client, client.cookies["csrftoken"].value


@pytest.mark.django_db
def test_a_signed_in_page_gets_a_token_for_its_user(settings):
    settings.WEB_ACCESS_TOKEN_LIFETIME = 120
    user = UserFactory()
    client, csrf = csrf_client(user)

    response = post(client, HTTP_X_CSRFTOKEN=csrf)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access", "expires_at"}
    token = AccessToken(body["access"])
    assert int(token["user_id"]) == user.pk
    assert token["exp"] - token["iat"] == 120
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromtimestamp(token["exp"], tz=UTC)


@pytest.mark.django_db
def test_without_the_csrf_token_it_is_refused_in_json():
    client, _ = csrf_client(UserFactory())

    response = post(client)

    assert_error(response, 403, "permission_denied")
    assert "CSRF" in response.json()["message"]
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_without_a_session_it_is_refused_in_json_not_sent_to_sign_in():
    client, csrf = csrf_client()

    response = post(client, HTTP_X_CSRFTOKEN=csrf)

    assert_error(response, 403, "not_authenticated")
    assert "Location" not in response


@pytest.mark.django_db
def test_a_bearer_token_is_not_a_session():
    user = UserFactory()
    bearer = str(AccessToken.for_user(user))
    assert_error(post(Client(), HTTP_AUTHORIZATION=f"Bearer {bearer}"), 403, "not_authenticated")


@pytest.mark.django_db
def test_a_deactivated_users_session_gets_no_token():
    user = UserFactory()
    client, csrf = csrf_client(user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert post(client, HTTP_X_CSRFTOKEN=csrf).status_code == 403


@pytest.mark.django_db
def test_only_post():
    client, csrf = csrf_client(UserFactory())
    assert_error(client.get(URL, HTTP_X_CSRFTOKEN=csrf), 405, "method_not_allowed")


@pytest.mark.django_db(transaction=True)
def test_the_hub_accepts_the_token(hub_server, redis_client):
    user = UserFactory()
    client, csrf = csrf_client(user)
    access = post(client, HTTP_X_CSRFTOKEN=csrf).json()["access"]

    with NativeClient.connect(hub_server, token=access, via="query") as socket:
        hello, _ = socket.start()

    assert hello["user"] == {"id": user.pk, "username": user.username}
