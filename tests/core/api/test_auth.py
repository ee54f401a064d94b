"""Token endpoints: obtain, refresh, verify; and what a bad or missing token gets."""

import json

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from tests.support.api import assert_error, client_for
from tests.support.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def post(url: str, body) -> object:
    return client_for().post(url, json.dumps(body), content_type="application/json")


def test_password_gives_a_token_pair_that_opens_the_api():
    user = UserFactory()
    response = post("/api/auth/token/", {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}

    inbox = client_for().get("/api/notifications/", headers={"Authorization": f"Bearer {tokens['access']}"})
    assert inbox.status_code == 200

    refreshed = post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200 and refreshed.json()["access"]
    assert post("/api/auth/token/verify/", {"token": tokens["access"]}).json() == {}


@pytest.mark.parametrize("password", ["wrong", ""])
def test_wrong_or_blank_password(password):
    user = UserFactory()
    response = post("/api/auth/token/", {"username": user.username, "password": password})
    assert response.status_code in (400, 401)
    assert_error(response, response.status_code, "invalid" if not password else "no_active_account")


def test_inactive_user_gets_no_token():
    user = UserFactory(is_active=False)
    response = post("/api/auth/token/", {"username": user.username, "password": TEST_PASSWORD})
    assert_error(response, 401, "no_active_account")


def test_unknown_fields_are_refused():
    user = UserFactory()
    response = post("/api/auth/token/", {"username": user.username, "password": TEST_PASSWORD, "is_staff": True})
    assert "is_staff" in assert_error(response, 400, "invalid")["fields"]


@pytest.mark.parametrize("url", ["/api/auth/token/refresh/", "/api/auth/token/verify/"])
def test_garbage_tokens_are_401(url):
    field = "refresh" if "refresh" in url else "token"
    assert_error(post(url, {field: "not.a.jwt"}), 401, "token_not_valid")


def test_refresh_token_of_a_deleted_user_is_401_not_500():
    user = UserFactory()
    refresh = str(RefreshToken.for_user(user))
    user.delete()
    assert_error(post("/api/auth/token/refresh/", {"refresh": refresh}), 401, "no_active_account")


def test_no_token_is_401_with_the_scheme_named():
    response = client_for().get("/api/notifications/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_401():
    response = client_for().get("/api/notifications/", headers={"Authorization": "Bearer nope"})
    assert_error(response, 401, "token_not_valid")


def test_a_refresh_token_does_not_open_the_api():
    user = UserFactory()
    refresh = str(RefreshToken.for_user(user))
    response = client_for().get("/api/notifications/", headers={"Authorization": f"Bearer {refresh}"})
    assert_error(response, 401, "token_not_valid")
