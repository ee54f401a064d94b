"""Access tokens for the pages' WebSocket: the session's user as a short-lived simplejwt access token."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from rest_framework_simplejwt.tokens import AccessToken


@dataclass(frozen=True)
class WebAccessToken:
    access: str
    expires_at: datetime


def web_access_token_for(user: AbstractBaseUser) -> WebAccessToken:
    """An access token like the API's (the hub accepts it), living WEB_ACCESS_TOKEN_LIFETIME seconds: a page
    holds it in memory only and asks for another before it expires, while its session lasts."""
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=settings.WEB_ACCESS_TOKEN_LIFETIME))
    return WebAccessToken(access=str(token), expires_at=datetime.fromtimestamp(token["exp"], tz=UTC))
