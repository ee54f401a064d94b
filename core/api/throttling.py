"""Rate limits: per user for everything, per publisher for publishing, per client address and per username for tokens.

Rates come from settings (`API_RATE_*` in .env.example) and are read on each
request rather than when the class is defined, so a changed setting applies.
Counters live in the shared cache (Redis), so every web process counts together.
The client address is `REMOTE_ADDR` (`NUM_PROXIES` is 0): `notifyhub/proxies.py`
has resolved it behind trusted proxies and removed `X-Forwarded-For` before Django.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, cast

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
        """DRF's sliding window (the requests of the last `duration` seconds, at most `num_requests`), kept in a
        sorted set and checked and counted by one script: one round trip, where DRF's reads the whole history
        and writes it back (two, and a race between them). A request that counts as several is refused whole
        (counting nothing) if that many do not fit."""
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        try:
            self.counted = self.requests_counted(request, view)
            client = cast(Any, self.cache)._cache.get_client(key, write=True)  # Django's Redis backend's own client
            # A sorted set of its own name: DRF's list under `key` (before an upgrade) expires by itself.
            allowed, frees_at = client.register_script(SLIDING_WINDOW)(
                keys=[self.cache.make_and_validate_key(f"{key}:window")],
                args=[repr(self.now), self.duration, self.num_requests, self.counted, secrets.token_hex(4)],
            )
        except redis.RedisError as error:
            # Fail open: the inbox still works from PostgreSQL while Redis is away; /healthz reports it.
            logger.warning("rate limit not checked, the cache is unreachable: %s", error)
            return True
        self.frees_at = float(frees_at) if frees_at else None
        return bool(allowed)

    def wait(self) -> float | None:
        """When this request would fit: once the request that must age out for it has (None: it never fits)."""
        if self.frees_at is None:
            return None
        return max(self.frees_at - self.now, 0.0)


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


# KEYS[1]: the window; ARGV: now, duration (s), requests allowed in it, requests this one counts as, a random
# tag (two requests in the same microsecond are two members). Returns {1} if counted, else {0, when enough of the
# window has aged out for it to fit} ({0, false}: it never fits; {1, false} when counted).
SLIDING_WINDOW = """
local now, duration = tonumber(ARGV[1]), tonumber(ARGV[2])
local allowed, counts = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - duration)
local counted = redis.call('ZCARD', KEYS[1])
if counted + counts > allowed then
    if counts > allowed then
        return {0, false}
    end
    local must_age = redis.call('ZRANGE', KEYS[1], counted + counts - allowed - 1, counted + counts - allowed - 1,
        'WITHSCORES')
    return {0, tostring(tonumber(must_age[2]) + duration)}
end
local members = {}
for i = 1, counts do
    members[#members + 1] = now
    members[#members + 1] = ARGV[1] .. ':' .. ARGV[5] .. ':' .. i
end
redis.call('ZADD', KEYS[1], unpack(members))
redis.call('EXPIRE', KEYS[1], math.ceil(duration))
return {1, false}
"""
