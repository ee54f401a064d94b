"""Helpers for API tests: clients authenticated with real JWTs, publishers, the error shape."""

import socket

from django.contrib.auth.models import Permission
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.support.factories import UserFactory


def client_for(user=None) -> APIClient:
    """An APIClient sending `user`'s access token (anonymous without a user)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def make_publisher(**kwargs):
    """A service user holding notifications.publish_notification."""
    user = UserFactory(**kwargs)
    user.user_permissions.add(Permission.objects.get(codename="publish_notification"))
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
