"""Strict reading of environment variables for settings.py.

django-environ does the parsing; this module adds what it lacks for a server
that must refuse to start on bad configuration: strict booleans and URL schemes,
and one clear line naming the variable instead of a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

NOT_SET = environ.Env.NOTSET
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A required environment variable is missing or malformed."""


class StrictEnv:
    """Typed accessors over os.environ that raise ConfigError naming the variable."""

    def __init__(self) -> None:
        self._env = environ.Env()

    def _raw(self, name: str, default):
        try:
            return self._env.str(name, default=default)
        except ImproperlyConfigured:
            raise ConfigError(f"{name} is required but not set (see .env.example)") from None

    def str(self, name: str, default=NOT_SET) -> str:
        value = self._raw(name, default)
        if default is NOT_SET and not value:
            raise ConfigError(f"{name} is required but empty (see .env.example)")
        return value

    def bool(self, name: str, default=NOT_SET) -> bool:
        value = self._raw(name, default)
        if isinstance(value, bool):
            return value
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")

    def int(self, name: str, default=NOT_SET, *, minimum: int | None = None) -> int:
        value = self._raw(name, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not an integer") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={number} must be at least {minimum}")
        return number

    def float(self, name: str, default=NOT_SET, *, minimum: float | None = None) -> float:
        value = self._raw(name, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not a number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={number} must be at least {minimum}")
        return number

    def list(self, name: str, default=NOT_SET) -> list[str]:
        value = self._raw(name, default)
        if isinstance(value, list):
            return value
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: str, choices: tuple[str, ...], default=NOT_SET) -> str:
        value = self._raw(name, default).strip().lower()
        if value not in choices:
            raise ConfigError(f"{name}={value!r} must be one of: {', '.join(choices)}")
        return value

    def db_url(self, name: str, default=NOT_SET) -> dict:
        value = self._raw(name, default)
        scheme = urlsplit(value).scheme
        if scheme not in environ.Env.DB_SCHEMES:
            raise ConfigError(f"{name}={_redact(value)!r} is not a database URL (e.g. postgres://user@host:5432/db)")
        try:
            return environ.Env.db_url_config(value)
        except (ValueError, ImproperlyConfigured) as error:
            raise ConfigError(f"{name} is malformed: {error}") from None

    def redis_url(self, name: str, default=NOT_SET) -> str:
        value = self._raw(name, default)
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


def config_error_exit(error: ConfigError) -> NoReturn:
    """Stop the process with one line instead of a settings traceback."""
    sys.exit(f"NotifyHub configuration error: {error}")


env = StrictEnv()
