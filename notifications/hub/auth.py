"""Who is connecting: the hub's JWT authentication, shared by every hub endpoint.

A hub client authenticates with a simplejwt *access* token, sent as
`Authorization: Bearer <token>` (mobile apps, servers) or as the
`access_token` query parameter (browsers cannot set headers on a WebSocket
handshake). The endpoint accepts the socket first and then closes it with
4401 when authentication fails, because a close before accepting becomes a
bare HTTP 403 and the client could not tell "refresh your token" from
"go away".

This is a set of helpers rather than an ASGI middleware on purpose: the
token is checked without the database (a bad token costs no query), and the
session then loads the user together with its departments and unread count
in one query (`selectors.connect_summary`, then `identity_of`).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import get_md5_hash_password

QUERY_PARAMETER = "access_token"


class AuthRefused(Exception):
    """The handshake's credentials are missing or not acceptable; `reason` is short and safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HubIdentity:
    """An authenticated connection: the active user and when the token it presented stops being valid."""

    user: AbstractUser
    token_expires_at: datetime


def token_from_scope(scope: dict) -> str | None:
    """The raw token from the `Authorization: Bearer` header, else from the `access_token` query parameter."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get(QUERY_PARAMETER)
    return values[0] if values and values[0] else None


def validate_access_token(raw_token: str | None) -> AccessToken:
    """Check an access token without the database: signature (algorithm pinned, so no `alg: none`), `exp`, type.

    Refuses missing, malformed, tampered, expired and refresh tokens.
    """
    if not raw_token:
        raise AuthRefused("missing token")
    try:
        # simplejwt annotates the encoded token as a Token; it takes the string.
        token = AccessToken(raw_token)  # type: ignore[arg-type]
        int(token[api_settings.USER_ID_CLAIM])  # group names are built from it
    except ExpiredTokenError:
        raise AuthRefused("token expired") from None
    except (TokenError, KeyError, TypeError, ValueError):
        raise AuthRefused("invalid token") from None
    return token


def user_id_of(token: AccessToken) -> int:
    return int(token[api_settings.USER_ID_CLAIM])


def identity_for_token(token: AccessToken) -> HubIdentity:
    """Load the validated token's user (sync: it queries the database); refuse inactive or deleted users."""
    User = get_user_model()
    try:
        user = User.objects.get(**{api_settings.USER_ID_FIELD: token[api_settings.USER_ID_CLAIM]})
    except User.DoesNotExist:
        return identity_of(token, None)
    return identity_of(token, cast(AbstractUser, user))


def identity_of(token: AccessToken, user: AbstractUser | None) -> HubIdentity:
    """The identity of a validated token whose user was looked up already (None: there is no such user).

    simplejwt's rules for a token's user (`JWTAuthentication.get_user`, which
    would look the user up again): it exists, it is active
    (`CHECK_USER_IS_ACTIVE`) and, with `CHECK_REVOKE_TOKEN`, its password is
    still the one the token was issued under.
    """
    if user is None or (api_settings.CHECK_USER_IS_ACTIVE and not user.is_active):
        raise AuthRefused("user unknown or inactive")
    if api_settings.CHECK_REVOKE_TOKEN and token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(
        user.password
    ):
        raise AuthRefused("user unknown or inactive")
    return HubIdentity(user=user, token_expires_at=datetime.fromtimestamp(token["exp"], tz=UTC))


def authenticate(raw_token: str | None) -> HubIdentity:
    """Both checks in one call (sync), for endpoints that authenticate outside a hub session."""
    return identity_for_token(validate_access_token(raw_token))
