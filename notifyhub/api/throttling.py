"""Rate limits: per user for everything, per publisher for publishing, per client address for tokens.

Rates come from settings (`API_RATE_*` in .env.example) and are read on each
request rather than when the class is defined, so a changed setting applies.
Counters live in the shared cache (Redis), so every web process counts together.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle
from rest_framework.throttling import UserRateThrottle as DRFUserRateThrottle


class _RateFromSettings(SimpleRateThrottle):
    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class UserRateThrottle(_RateFromSettings, DRFUserRateThrottle):
    """Every API request of one user (or one address, before login)."""

    scope = "user"


class PublishRateThrottle(_RateFromSettings, DRFUserRateThrottle):
    """Publishing, counted per publishing user apart from their other requests."""

    scope = "publish"


class TokenRateThrottle(_RateFromSettings, AnonRateThrottle):
    """Token requests per client address: slows password guessing."""

    scope = "auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
