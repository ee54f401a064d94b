"""Rate limits answer 429 with Retry-After; publishers and users are counted apart; token requests per address and
per username."""

import json

import pytest

from tests.support.api import assert_error, client_for, closed_port, make_publisher
from tests.support.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.API_THROTTLE_RATES, **rates},
        }

    return set_rates


def test_user_rate_gives_429_with_retry_after(rates):
    rates(user="2/minute")
    user, other = UserFactory(), UserFactory()
    client = client_for(user)
    assert client.get("/api/notifications/unread-count/").status_code == 200
    assert client.get("/api/notifications/").status_code == 200

    response = client.get("/api/notifications/unread-count/")

    assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert client_for(other).get("/api/notifications/").status_code == 200  # counted per user


def test_publishing_has_its_own_rate(rates):
    rates(publish="1/minute", user="100/minute")
    publisher = make_publisher()
    client = client_for(publisher)
    body = json.dumps({"event": "Ping", "title": "t", "recipients": {"users": [publisher.pk]}})

    assert client.post("/api/notifications/", body, content_type="application/json").status_code == 201
    throttled = client.post("/api/notifications/", body, content_type="application/json")

    assert_error(throttled, 429, "throttled")
    assert int(throttled["Retry-After"]) > 0
    assert client.get("/api/notifications/").status_code == 200  # reading is not publishing


def test_token_requests_are_limited_per_address(rates):
    rates(auth="2/minute")
    user = UserFactory()
    body = json.dumps({"username": user.username, "password": "wrong"})
    for _ in range(2):
        assert client_for().post("/api/auth/token/", body, content_type="application/json").status_code == 401
    good = json.dumps({"username": user.username, "password": TEST_PASSWORD})
    response = client_for().post("/api/auth/token/", good, content_type="application/json")
    assert_error(response, 429, "throttled")
    assert "Retry-After" in response
    elsewhere = client_for().post("/api/auth/token/", good, content_type="application/json", REMOTE_ADDR="10.0.0.9")
    assert elsewhere.status_code == 200


def token_request(username: str, password: str, address: str):
    body = json.dumps({"username": username, "password": password})
    return client_for().post("/api/auth/token/", body, content_type="application/json", REMOTE_ADDR=address)


def test_token_requests_are_limited_per_username_from_any_address(rates):
    rates(auth_username="3/minute", auth="100/minute")
    user, other = UserFactory(username="alice"), UserFactory()
    # One username, however it is spelled: Django trims it, and case and width never make a fresh budget.
    for address, spelling in (("10.0.0.1", "alice"), ("10.0.0.2", "ALICE"), ("10.0.0.3", " Ａlice ")):
        assert token_request(spelling, "wrong", address).status_code == 401

    throttled = token_request(user.username, TEST_PASSWORD, "10.0.0.4")

    assert_error(throttled, 429, "throttled")
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert token_request(other.username, TEST_PASSWORD, "10.0.0.4").status_code == 200  # counted per username


def test_refresh_and_verify_are_not_counted_per_username(rates):
    rates(auth_username="1/minute", auth="100/minute")
    user = UserFactory()
    refresh = token_request(user.username, TEST_PASSWORD, "10.0.0.1").json()["refresh"]
    for _ in range(3):
        body = json.dumps({"refresh": refresh})
        assert client_for().post("/api/auth/token/refresh/", body, content_type="application/json").status_code == 200


@pytest.mark.parametrize(
    ("body", "status_code", "code"),
    [("{", 400, "parse_error"), ("[]", 400, "invalid"), ('{"password": "x"}', 400, "invalid")],
)
def test_a_token_request_without_a_username_gets_the_views_answer(rates, body, status_code, code):
    rates(auth_username="1/minute", auth="100/minute")
    for _ in range(2):
        response = client_for().post("/api/auth/token/", body, content_type="application/json")
        assert_error(response, status_code, code)


def test_health_is_never_throttled(rates):
    rates(user="1/minute")
    assert all(client_for().get("/healthz").status_code == 200 for _ in range(3))


def test_unreachable_cache_lets_requests_through(settings):
    """Rate limiting must not take the inbox down with Redis: PostgreSQL still answers."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    assert client_for(UserFactory()).get("/api/notifications/").status_code == 200
    assert token_request(UserFactory().username, TEST_PASSWORD, "10.0.0.1").status_code == 200
