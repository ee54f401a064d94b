"""Who is connecting: the hub's JWT authentication, shared by every hub endpoint.

A hub client authenticates with a simplejwt *access* token, sent as
`Authorization: Bearer <token>` (mobile apps, servers) or as the
`access_token` query parameter (browsers cannot set headers on a WebSocket
handshake). The endpoint accepts the socket first and then closes it with
4401 when authentication fails, because a close before accepting becomes a
bare HTTP 403 and the client could not tell "refresh your token" from
"go away".

This is a set of helpers rather than an ASGI middleware on purpose: the
session loads the user together with its departments and unread count in one
database round trip at connect (`HubSession.open`).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.tokens import AccessToken

QUERY_PARAMETER = "access_token"


class AuthRefused(Exception):
    """The handshake's credentials are missing or not acceptable; `reason` is short and safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HubIdentity:
    """An authenticated connection: the active user and when the token it presented stops being valid."""

    user: AbstractBaseUser
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


def authenticate(raw_token: str | None) -> HubIdentity:
    """Check an access token and load its user (runs in a sync thread: it queries the database).

    Refuses missing, malformed, tampered, `alg: none`, expired and refresh
    tokens (simplejwt pins the algorithm and checks `exp` and the token type)
    and tokens of users who are inactive or no longer exist.
    """
    if not raw_token:
        raise AuthRefused("missing token")
    try:
        token = AccessToken(raw_token)
    except ExpiredTokenError:
        raise AuthRefused("token expired") from None
    except TokenError:
        raise AuthRefused("invalid token") from None
    try:
        user = JWTAuthentication().get_user(token)
    except AuthenticationFailed:  # InvalidToken too: no user claim, unknown or inactive user
        raise AuthRefused("user unknown or inactive") from None
    return HubIdentity(user=user, token_expires_at=datetime.fromtimestamp(token["exp"], tz=UTC))
