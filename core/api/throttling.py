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
    # Set by SimpleRateThrottle.__init__ from the rate (drf-stubs leaves them out).
    num_requests: int
    duration: int
    counted = 1  # of the rate's requests this one uses, as `requests_counted` said

    def get_rate(self) -> str:
        # drf-stubs types the configured rates as numbers; DRF's are strings such as "600/minute".
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]  # type: ignore[return-value]

    def requests_counted(self, request: Request, view: APIView) -> int:
        """How many of the rate's requests this one counts as: one, unless it does the work of several."""
        return 1

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            self.counted = self.requests_counted(request, view)
            return super().allow_request(request, view)
        except redis.RedisError as error:
            # Fail open: the inbox still works from PostgreSQL while Redis is away; /healthz reports it.
            logger.warning("rate limit not checked, the cache is unreachable: %s", error)
            return True

    def throttle_success(self) -> bool:
        """Count the request as `counted` requests, or refuse it whole (counting nothing) if that many do not fit."""
        if len(self.history) + self.counted > self.num_requests:
            return self.throttle_failure()
        self.history[:0] = [self.now] * self.counted  # one object repeated: pickled once, whatever the count
        self.cache.set(self.key, self.history, self.duration)
        return True

    def wait(self) -> float | None:
        if self.counted == 1:
            return super().wait()
        if self.counted > self.num_requests:
            return None  # never fits: no Retry-After would help
        # History is newest first: once this request ages out, `counted` more fit.
        return float(self.history[self.num_requests - self.counted]) + self.duration - self.now


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
