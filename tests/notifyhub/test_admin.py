"""notifyhub/admin.py: the admin's sign-in refuses a username from an address after repeated failures, until a
cool-off has passed, with its own page (429, Retry-After), never a 500."""

import json

import pytest
from django.core.cache import cache

from tests.support.api import closed_port
from tests.support.factories import TEST_PASSWORD, UserFactory
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def lockout(settings):
    """Three failures lock a pair out for two seconds; every test starts with no failure counted."""
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    settings.ADMIN_LOGIN_COOLOFF = 2
    cache.clear()


@pytest.fixture
def staff():
    return UserFactory(username="ops", is_staff=True, is_superuser=True)


def sign_in(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        f"{LOGIN}?next=/admin/", {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, username: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        response = sign_in(client, username, "wrong", address)
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()


def test_after_repeated_failures_even_the_right_password_is_refused_until_the_cooloff(client, staff):
    fail(client, staff.username, 3)

    refused = sign_in(client, staff.username, TEST_PASSWORD)

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 2
    page = refused.content.decode()
    assert "Too many failed sign-ins for this username from your address. Try again in" in page
    assert 'name="password"' in page  # the admin's own sign-in page, to try again later
    assert not signed_in(client)

    assert eventually(lambda: sign_in(client, staff.username, TEST_PASSWORD).status_code == 302, timeout=5)
    assert signed_in(client)


def test_the_lockout_holds_one_username_at_one_address(client, staff, settings):
    other = UserFactory(is_staff=True)
    fail(client, staff.username, 3)
    assert sign_in(client, staff.username, TEST_PASSWORD).status_code == 429

    assert sign_in(client, staff.username.upper(), TEST_PASSWORD).status_code == 429  # one username, any case
    assert sign_in(client, staff.username, TEST_PASSWORD, address="10.0.0.2").status_code == 302
    client.logout()
    assert sign_in(client, other.username, TEST_PASSWORD).status_code == 302


def test_a_successful_sign_in_forgets_the_failures(client, staff):
    fail(client, staff.username, 2)
    assert sign_in(client, staff.username, TEST_PASSWORD).status_code == 302
    client.logout()

    fail(client, staff.username, 2)
    assert sign_in(client, staff.username, TEST_PASSWORD).status_code == 302


def test_a_user_who_may_not_use_the_admin_fails_like_a_wrong_password(client):
    UserFactory(username="clerk")  # not staff: the right password is no way in
    for _ in range(3):
        assert sign_in(client, "clerk", TEST_PASSWORD).status_code == 200
    assert sign_in(client, "clerk", TEST_PASSWORD).status_code == 429


def test_failed_token_requests_do_not_count_against_the_admin_sign_in(client, staff):
    body = json.dumps({"username": staff.username, "password": "wrong"})
    for _ in range(5):
        response = client.post("/api/auth/token/", body, content_type="application/json", REMOTE_ADDR="10.0.0.1")
        assert response.status_code == 401

    assert sign_in(client, staff.username, TEST_PASSWORD).status_code == 302


def test_with_redis_away_the_password_alone_decides(client, staff, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    fail(client, staff.username, 4)
    assert sign_in(client, staff.username, TEST_PASSWORD).status_code == 302
