"""One error shape across the API, and bad requests that must never become a 500."""

import pytest
from django.test import override_settings

from core.api.errors import flatten_field_errors
from tests.support.api import assert_error, client_for, make_publisher

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


@pytest.fixture
def client():
    return client_for(make_publisher())


def test_malformed_json_is_400(client):
    error = assert_error(client.post(URL, "{not json", content_type="application/json"), 400, "parse_error")
    assert "JSON parse error" in error["message"]


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_a_body_that_is_not_an_object_is_400(client, body):
    assert_error(client.post(URL, body, content_type="application/json"), 400, "invalid")


def test_deeply_nested_json_is_400_not_500(client):
    body = "[" * 50_000 + "]" * 50_000
    with override_settings(API_MAX_BODY_BYTES=200_000):
        assert_error(client.post(URL, body, content_type="application/json"), 400, "parse_error")


def test_non_json_content_type_is_415(client):
    response = client.post(URL, "event=Ping", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_oversized_body_is_413_naming_the_limit(client, settings):
    settings.API_MAX_BODY_BYTES = 2_048
    body = '{"title": "' + "x" * 3_000 + '"}'
    error = assert_error(client.post(URL, body, content_type="application/json"), 413, "body_too_large")
    assert "2048 bytes" in error["message"]


def test_a_body_just_under_the_limit_is_parsed(client, settings):
    settings.API_MAX_BODY_BYTES = 2_048
    body = '{"title": "' + "x" * 1_900 + '"}'
    error = assert_error(client.post(URL, body, content_type="application/json"), 400, "invalid")
    assert "event" in error["fields"]  # got past the parser to validation


def test_unknown_api_url_is_json_404(client):
    assert_error(client.get("/api/nothing-here/"), 404, "not_found")


def test_wrong_method_is_405(client):
    assert_error(client.delete(URL), 405, "method_not_allowed")


def test_flatten_field_errors_gives_dotted_paths():
    detail = {
        "title": ["Required."],
        "recipients": {"users": {0: ["Bad."]}, "non_field_errors": ["Name one."]},
        "items": [{}, {"name": ["Blank."]}],
        "non_field_errors": ["General."],
    }
    assert flatten_field_errors(detail) == {
        "title": ["Required."],
        "recipients.users.0": ["Bad."],
        "recipients": ["Name one."],
        "items.1.name": ["Blank."],
        None: ["General."],
    }


def test_general_validation_errors_become_the_message(client):
    body = '{"event": "Ping", "title": "t", "recipients": {}}'
    error = assert_error(client.post(URL, body, content_type="application/json"), 400, "invalid")
    assert error["fields"] == {"recipients": ["Name at least one user or department."]}
    assert error["message"] == "Some fields are invalid."


# With DEBUG (as `make run` has it) Django would redirect a POST with a 500, and answer unknown URLs in HTML.
@pytest.mark.parametrize("debug", [False, True])
def test_missing_trailing_slash_is_a_404_naming_the_url_not_a_redirect(client, settings, debug):
    settings.DEBUG = debug
    response = client.post("/api/notifications", "{}", content_type="application/json")
    error = assert_error(response, 404, "not_found")
    assert error["message"] == "Not found. Did you mean /api/notifications/ ? API URLs end with a slash."


def test_unknown_api_url_is_json_404_with_debug_on_too(client, settings):
    settings.DEBUG = True
    assert_error(client.get("/api/nothing-here/"), 404, "not_found")


def test_a_views_own_404_keeps_its_message(client, settings):
    settings.DEBUG = True
    error = assert_error(client.get("/api/notifications/00000000-0000-0000-0000-000000000000/"), 404, "not_found")
    assert "Did you mean" not in error["message"]


def test_admin_still_gets_its_slash_redirect(client):
    assert client.get("/admin").status_code == 301


def test_chunked_body_without_length_is_411(client):
    response = client.generic(
        "POST",
        URL,
        b'{"event": "Ping"}',
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert_error(response, 411, "length_required")


def test_a_bug_is_a_json_500_without_details(client, monkeypatch):
    def broken(user_id):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("notifications.selectors.unread_count", broken)
    client.raise_request_exception = False
    response = client.get("/api/notifications/unread-count/")
    assert_error(response, 500, "server_error")
    assert b"secret internals" not in response.content
