"""Rate limits: per user for everything, per publisher for publishing, per client address and per username for tokens.

Rates come from settings (`API_RATE_*` in .env.example) and are read on each
request rather than when the class is defined, so a changed setting applies.
Counters live in the shared cache (Redis), so every web process counts together.
The client address is `REMOTE_ADDR` (`NUM_PROXIES` is 0): `notifyhub/proxies.py`
has resolved it behind trusted proxies and removed `X-Forwarded-For` before Django.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import redis
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle
from rest_framework.throttling import UserRateThrottle as DRFUserRateThrottle

from core.sign_in import username_key

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes named in settings: this module
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class _RateFromSettings(SimpleRateThrottle):
    scope: str  # each throttle below names its own

    def get_rate(self) -> str:
        # drf-stubs types the configured rates as numbers; DRF's are strings such as "600/minute".
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]  # type: ignore[return-value]

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except redis.RedisError as error:
            # Fail open: the inbox still works from PostgreSQL while Redis is away; /healthz reports it.
            logger.warning("rate limit not checked, the cache is unreachable: %s", error)
            return True


class UserRateThrottle(_RateFromSettings, DRFUserRateThrottle):
    """Every API request of one user (or one address, before login)."""

    scope = "user"


class PublishRateThrottle(_RateFromSettings, DRFUserRateThrottle):
    """Publishing, counted per publishing user apart from their other requests."""

    scope = "publish"


class TokenRateThrottle(_RateFromSettings, AnonRateThrottle):
    """Token requests per client address: slows password guessing."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenUsernameRateThrottle(_RateFromSettings):
    """Token requests per username, from any address: slows guessing one account's password from many addresses."""

    scope = "auth_username"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        # Reading the body here raises what the view would (malformed JSON, too large): the client gets that answer.
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(username, str) or not username.strip():
            return None  # nothing to count: the view answers 400
        return self.cache_format % {"scope": self.scope, "ident": username_key(username)}
