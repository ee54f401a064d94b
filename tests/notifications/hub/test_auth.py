"""Authentication of /ws/notifications/ against a real daphne: every bad token kind, and expiry mid-connection."""

import base64
import json
import warnings
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from notifications import presence
from tests.support.factories import UserFactory
from tests.support.hub_client import NativeClient, access_token
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user) -> dict:
    return dict(AccessToken.for_user(user).payload)


def tampered(user) -> str:
    """A valid token whose payload was swapped for another user's: the signature does not match the new payload."""
    header, _, signature = access_token(user).split(".")
    other = UserFactory()
    return ".".join([header, _b64({**_claims(user), "user_id": str(other.pk)}), signature])


def unsigned(user) -> str:
    return ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(_claims(user)), ""])


def signed_with_another_key(user) -> str:
    return jwt.encode(_claims(user), "not-the-server-key-" * 3, algorithm="HS256")


def signed_with_another_algorithm(user) -> str:
    with warnings.catch_warnings():  # PyJWT finds the test key short for HS512; the server must refuse it anyway
        warnings.simplefilter("ignore")
        return jwt.encode(_claims(user), settings.SECRET_KEY, algorithm="HS512")


def refresh_token(user) -> str:
    return str(RefreshToken.for_user(user))


def expired(user) -> str:
    return access_token(user, lifetime=-timedelta(seconds=5))


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda user: "not-a-jwt", "invalid token"),
        (tampered, "invalid token"),
        (unsigned, "invalid token"),
        (signed_with_another_key, "invalid token"),
        (signed_with_another_algorithm, "invalid token"),
        (refresh_token, "invalid token"),
        (expired, "token expired"),
    ],
    ids=["garbage", "tampered", "alg-none", "wrong-key", "wrong-algorithm", "refresh-token", "expired"],
)
@pytest.mark.parametrize("via", ["header", "query"])
def test_bad_tokens_are_accepted_then_closed_with_4401(hub_server, redis_client, make_token, reason, via):
    user = UserFactory()

    with NativeClient.connect(hub_server, token=make_token(user), via=via) as client:
        closed = client.closed()

    assert (closed.code, closed.reason) == (4401, reason)
    assert closed.frames == [{"type": "error", "code": "unauthorized", "message": reason}]
    assert presence.online_user_ids([user.pk]) == set()


def test_missing_token_is_closed_with_4401(hub_server):
    with NativeClient.connect(hub_server) as client:
        closed = client.closed()

    assert (closed.code, closed.reason) == (4401, "missing token")
    assert closed.frames == [{"type": "error", "code": "unauthorized", "message": "missing token"}]


@pytest.mark.parametrize("remove", ["deactivate", "delete"])
def test_users_who_are_inactive_or_gone_are_refused(hub_server, remove):
    user = UserFactory()
    token = access_token(user)
    if remove == "deactivate":
        user.is_active = False
        user.save(update_fields=["is_active"])
    else:
        user.delete()

    with NativeClient.connect(hub_server, token=token) as client:
        closed = client.closed()

    assert (closed.code, closed.reason) == (4401, "user unknown or inactive")
    assert closed.frames == [{"type": "error", "code": "unauthorized", "message": "user unknown or inactive"}]


@pytest.mark.parametrize("via", ["header", "query"])
def test_valid_access_token_gets_hello(hub_server, redis_client, via):
    user = UserFactory()

    with NativeClient.connect(hub_server, token=access_token(user), via=via) as client:
        hello, replayed = client.start()
        assert presence.online_user_ids([user.pk]) == {user.pk}

    assert hello["user"] == {"id": user.pk, "username": user.username}
    assert replayed == []


def test_connection_is_closed_with_4401_when_its_token_expires(hub_server, redis_client):
    user = UserFactory()

    with NativeClient.connect(hub_server, token=access_token(user, lifetime=timedelta(seconds=3))) as client:
        client.start()
        client.send(type="ping")
        closed = client.closed(timeout=15)

    assert [frame["type"] for frame in closed.frames] == ["pong", "error"]
    assert closed.frames[-1] == {"type": "error", "code": "unauthorized", "message": "token expired"}
    assert (closed.code, closed.reason) == (4401, "token expired")
    assert eventually(lambda: presence.online_user_ids([user.pk]) == set())


def test_both_servers_refuse_the_same_way(each_server):
    with NativeClient.connect(each_server, token="not-a-jwt") as client:
        closed = client.closed()

    assert (closed.code, closed.reason) == (4401, "invalid token")
    assert closed.frames == [{"type": "error", "code": "unauthorized", "message": "invalid token"}]


@pytest.mark.parametrize("change", ["none", "deactivate", "delete", "new password"])
def test_a_loaded_user_is_refused_exactly_when_simplejwt_would_refuse_it(monkeypatch, change):
    """The connect loads the user in its own query (`selectors.connect_summary`) and judges it with `identity_of`:
    the verdict must stay simplejwt's own (`JWTAuthentication.get_user`), revoked passwords included."""
    from django.contrib.auth import get_user_model
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework_simplejwt import authentication, tokens
    from rest_framework_simplejwt.authentication import JWTAuthentication

    from notifications.hub import auth
    from notifications.hub.auth import AuthRefused, identity_of

    # simplejwt's modules each hold the settings object they imported (overriding SIMPLE_JWT replaces it only in one)
    for module in (tokens, authentication, auth):
        monkeypatch.setattr(module.api_settings, "CHECK_REVOKE_TOKEN", True)
    user = UserFactory()
    token = AccessToken.for_user(user)
    if change == "deactivate":
        user.is_active = False
        user.save(update_fields=["is_active"])
    elif change == "delete":
        user.delete()
    elif change == "new password":
        user.set_password("another-password")
        user.save(update_fields=["password"])

    try:
        JWTAuthentication().get_user(token)
        simplejwt_accepts = True
    except AuthenticationFailed:
        simplejwt_accepts = False
    try:
        identity = identity_of(token, get_user_model().objects.filter(pk=user.pk).first())
        we_accept = True
    except AuthRefused as refused:
        assert refused.reason == "user unknown or inactive"
        we_accept = False

    assert we_accept == simplejwt_accepts == (change == "none")
    if we_accept:
        assert identity.user.pk == user.pk
