"""Strict reading of environment variables for the settings: the one typed layer every value passes.

django-environ does the parsing; this module adds what it lacks for a server
that must refuse to start on bad configuration: strict booleans and URL schemes,
and one clear line per problem naming the variable instead of a traceback.

The settings read every variable, check the rules between them (`env.check`),
then call `env.stop_if_invalid()`: a bad value is recorded and its default
stands in until then, so one start reports every problem at once.
"""

from __future__ import annotations

import builtins
import functools
import ipaddress
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

NOT_SET: Any = environ.Env.NOTSET
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}

T = TypeVar("T")


class ConfigError(Exception):
    """A required environment variable is missing or malformed."""


def _recorded(neutral: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn a parser `(env, name, text, **options) -> value` into an accessor `(env, name, default, **options)`.

    A missing or bad value is recorded in `env.problems`; the parsed default (or `neutral` for a required
    variable) stands in for it, so rules checked afterwards see a valid value and add no second complaint.
    """

    def decorate(parse: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(parse)
        def read(self: StrictEnv, name: str, default: Any = NOT_SET, **options: Any) -> T:
            try:
                return parse(self, name, self._raw(name, default), **options)
            except ConfigError as error:
                self.problems.append(str(error))
                return neutral if default is NOT_SET else parse(self, name, default, **options)

        return read

    return decorate


class StrictEnv:
    """Typed accessors over os.environ; every problem is kept for `stop_if_invalid`."""

    def __init__(self) -> None:
        self._env = environ.Env()
        self.problems: list[str] = []

    def _raw(self, name: str, default: Any) -> Any:
        try:
            value = self._env.str(name, default=default)
        except ImproperlyConfigured:
            raise ConfigError(f"{name} is required but not set (see .env.example)") from None
        if default is NOT_SET and not value:
            raise ConfigError(f"{name} is required but empty (see .env.example)")
        return value

    def check(self, condition: bool, problem: str) -> None:
        """Record `problem` unless `condition` holds (a rule between variables)."""
        if not condition:
            self.problems.append(problem)

    def stop_if_invalid(self) -> None:
        """Exit with one line per recorded problem, if there is any."""
        if self.problems:
            sys.exit("\n".join(f"NotifyHub configuration error: {problem}" for problem in self.problems))

    @_recorded(neutral="")
    def str(self, name: str, value: builtins.str) -> builtins.str:
        return value

    @_recorded(neutral=False)
    def bool(self, name: builtins.str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")

    @_recorded(neutral=0)
    def int(self, name: builtins.str, value: Any, *, minimum: int | None = None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not an integer") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={number} must be at least {minimum}")
        return number

    @_recorded(neutral=0.0)
    def float(self, name: builtins.str, value: Any, *, minimum: float | None = None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not a number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={number} must be at least {minimum}")
        return number

    @_recorded(neutral=[])
    def list(self, name: builtins.str, value: Any) -> list[builtins.str]:
        if isinstance(value, list):
            return value
        return [item.strip() for item in value.split(",") if item.strip()]

    @_recorded(neutral=[])
    def networks(self, name: builtins.str, value: Any) -> builtins.list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Comma-separated addresses or networks (`10.0.0.0/8`, `::1`); empty: none."""
        items = value if isinstance(value, list) else [item.strip() for item in value.split(",") if item.strip()]
        try:
            return [ipaddress.ip_network(item, strict=False) for item in items]
        except ValueError as error:
            raise ConfigError(f"{name}: {error} (use addresses or networks such as 10.0.0.0/8, ::1)") from None

    @_recorded(neutral="")
    def choice(self, name: builtins.str, value: builtins.str, *, choices: tuple[builtins.str, ...]) -> builtins.str:
        chosen = value.strip().lower()
        if chosen not in choices:
            raise ConfigError(f"{name}={chosen!r} must be one of: {', '.join(choices)}")
        return chosen

    @_recorded(neutral={"ENGINE": "django.db.backends.postgresql", "NAME": ""})
    def postgres_url(self, name: builtins.str, value: builtins.str) -> dict[builtins.str, Any]:
        """A PostgreSQL URL as Django's DATABASES entry (NotifyHub runs on PostgreSQL only)."""
        if urlsplit(value).scheme not in POSTGRES_SCHEMES:
            raise ConfigError(
                f"{name}={_redact(value)!r} is not a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/notifyhub)"
            )
        try:
            config: dict[builtins.str, Any] = environ.Env.db_url_config(value)
            return config
        except (ValueError, ImproperlyConfigured) as error:
            raise ConfigError(f"{name} is malformed: {error}") from None

    @_recorded(neutral="redis://127.0.0.1:6379/0")
    def redis_url(self, name: builtins.str, value: builtins.str) -> builtins.str:
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"} or not (parts.hostname or parts.path):
            raise ConfigError(f"{name}={_redact(value)!r} is not a Redis URL (e.g. redis://127.0.0.1:6379/0)")
        return value


def _redact(url: str) -> str:
    """Hide a password in a URL before it is printed."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***", 1)
    return url


def read_env_file(path: Path) -> None:
    """Load KEY=VALUE lines from `path` into os.environ without overriding real variables."""
    if path.is_file():
        environ.Env.read_env(str(path), overwrite=False)


env = StrictEnv()
