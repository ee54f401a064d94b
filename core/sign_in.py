"""Limits on signing in: the one spelling of a username that counters use, and the lockout after failed sign-ins.

Counters live in the shared cache (Redis), so every web process counts together; the client address is
`REMOTE_ADDR`, which `notifyhub/proxies.py` has already resolved behind trusted proxies. Like the API's rate
limits, a lockout fails open: with Redis away, sign-ins are checked by password alone (and `/healthz` says so).

The password sign-in pages (the admin's `/admin/login/` and the web pages' `/sign-in/`) share one lockout,
`password_sign_in_lockout()`: a guess on either page counts against the same username and address, so two pages
do not give twice the guesses. Their forms use `LockoutAuthenticationFormMixin`, their views `refuse_if_locked_out`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import unicodedata
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

logger = logging.getLogger(__name__)


def username_key(username: str) -> str:
    """`username` as counters know it: spaces trimmed, NFKC, case folded (`Alice ` is `alice`), then hashed,
    so that a key has a bounded length and Redis holds no usernames."""
    folded = unicodedata.normalize("NFKC", username.strip()).casefold()
    return hashlib.sha256(folded.encode()).hexdigest()


class FailedSignInLockout:
    """After `max_failures` failed sign-ins of one username from one address within `cooloff` seconds, that pair
    is refused for `cooloff` seconds, a correct password included. Other addresses and usernames are not affected,
    so nobody can lock a user out from everywhere; a success clears the pair's failures."""

    def __init__(self, name: str, *, max_failures: int, cooloff: int) -> None:
        self.name = name
        self.max_failures = max_failures
        self.cooloff = cooloff

    def seconds_left(self, username: str, address: str) -> int:
        """Seconds until the pair may try again; 0 when it may now."""
        try:
            locked_until = cache.get(self._key("locked", username, address))
        except redis.RedisError as error:
            logger.warning("%s lockout not checked, the cache is unreachable: %s", self.name, error)
            return 0
        return max(0, math.ceil(locked_until - time.time())) if locked_until else 0

    def record_failure(self, username: str, address: str) -> None:
        """Count a failed sign-in; the one that reaches `max_failures` locks the pair."""
        failures_key = self._key("failures", username, address)
        try:
            failures = self._count(failures_key)
            if failures >= self.max_failures:
                cache.set(self._key("locked", username, address), time.time() + self.cooloff, timeout=self.cooloff)
                cache.delete(failures_key)
                logger.warning(
                    "%s: %d failed sign-ins from %s; that username is refused from there for %d s",
                    self.name,
                    failures,
                    address,
                    self.cooloff,
                )
        except redis.RedisError as error:
            logger.warning("%s failure not counted, the cache is unreachable: %s", self.name, error)

    def _count(self, failures_key: str) -> int:
        """One more failure in the window that started at the first one."""
        if cache.add(failures_key, 1, timeout=self.cooloff):
            return 1
        try:
            return int(cache.incr(failures_key))
        except ValueError:  # the window ended between the two calls: this failure starts the next
            cache.set(failures_key, 1, timeout=self.cooloff)
            return 1

    def clear(self, username: str, address: str) -> None:
        """Forget the pair's failures (after a successful sign-in)."""
        try:
            cache.delete(self._key("failures", username, address))
        except redis.RedisError as error:
            logger.warning("%s failures not cleared, the cache is unreachable: %s", self.name, error)

    def _key(self, kind: str, username: str, address: str) -> str:
        return f"sign-in:{self.name}:{kind}:{username_key(username)}:{address}"


def password_sign_in_lockout() -> FailedSignInLockout:
    """The lockout of the password sign-in pages as the settings say now (ADMIN_LOGIN_MAX_FAILURES,
    ADMIN_LOGIN_COOLOFF)."""
    return FailedSignInLockout(
        "sign-in", max_failures=settings.ADMIN_LOGIN_MAX_FAILURES, cooloff=settings.ADMIN_LOGIN_COOLOFF
    )


def wait_in_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"


class LockoutAuthenticationFormMixin(AuthenticationForm):
    """An AuthenticationForm refused while its username and address are locked out; failures are counted.

    Put it before the form it extends (`class F(LockoutAuthenticationFormMixin, AdminAuthenticationForm)`), so
    that whatever that form refuses (a wrong password, an inactive account, a non-staff user in the admin)
    counts as a failure.
    """

    locked_out_for = 0  # seconds, when refused for the lockout

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        address = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # nothing was tried: the missing field is the error
        lockout = password_sign_in_lockout()
        self.locked_out_for = lockout.seconds_left(username, address)
        if self.locked_out_for:
            raise ValidationError(
                "Too many failed sign-ins for this username from your address. "
                f"Try again in {wait_in_words(self.locked_out_for)}.",
                code="locked_out",
            )
        try:
            cleaned = super().clean()
        except ValidationError:  # a wrong password, an inactive account, or one the page does not admit
            lockout.record_failure(username, address)
            raise
        lockout.clear(username, address)
        return cleaned


def refuse_if_locked_out(response: TemplateResponse) -> TemplateResponse:
    """A sign-in page's response, made 429 with Retry-After when its form was refused for the lockout."""
    locked_out_for = getattr((response.context_data or {}).get("form"), "locked_out_for", 0)
    if locked_out_for:
        response.status_code = 429
        response["Retry-After"] = str(locked_out_for)
    return response
