"""Helpers for API tests: clients authenticated with real JWTs, publishers, the error shape."""

import socket

from django.contrib.auth.models import Permission
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.support.factories import PublisherScopeFactory, UserFactory


def client_for(user=None) -> APIClient:
    """An APIClient sending `user`'s access token (anonymous without a user)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def make_publisher(*, scope: dict | None = None, without_scope: bool = False, **user_fields):
    """A service user holding notifications.publish_notification and a publisher scope: unrestricted (every
    recipient, any event name, documents) unless `scope` gives PublisherScope fields; none with `without_scope`."""
    user = UserFactory(**user_fields)
    user.user_permissions.add(Permission.objects.get(codename="publish_notification"))
    if not without_scope:
        PublisherScopeFactory(publisher=user, **(scope or {}))
    return user


def assert_error(response, status_code: int, code: str) -> dict:
    """The response is an error in the API's one shape; returns its body."""
    assert response.status_code == status_code, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"code", "message", "fields"}
    return body


def closed_port() -> int:
    """A local port nothing listens on: for "the service is down" tests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
