"""Safe defaults: outside DEBUG a placeholder or short SECRET_KEY is refused; the production settings refuse DEBUG
and weak keys, redirect plain HTTP (not the probes), send HSTS, and `manage.py check --deploy` is clean for them."""

import os
import secrets
import subprocess
import sys

import pytest

from tests.support.servers import REPO_ROOT
from tests.support.settings_process import VALID, load_settings

STRONG_KEY = secrets.token_urlsafe(50)


@pytest.mark.parametrize("key", ["change-me", "short-but-not-a-placeholder"])
def test_a_placeholder_or_short_key_is_refused_when_debug_is_off(key):
    result = load_settings(SECRET_KEY=key)

    assert result.returncode == 1
    assert "SECRET_KEY is a placeholder or shorter than 32 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_may_run_with_the_example_key():
    assert load_settings(SECRET_KEY="change-me", DEBUG="true").returncode == 0


def test_jwts_are_signed_with_their_own_key_when_one_is_set():
    jwt_key = secrets.token_urlsafe(40)
    result = load_settings(
        "print(settings.SIMPLE_JWT['SIGNING_KEY'] == settings.JWT_SIGNING_KEY)", JWT_SIGNING_KEY=jwt_key
    )
    assert result.stdout.strip() == "True", result.stderr


def manage(*argv: str, **overrides: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in VALID}
    environment.update(VALID)
    environment.update(
        ENV_FILE=str(REPO_ROOT / "no-such-env-file"),
        SECRET_KEY=STRONG_KEY,
        DJANGO_SETTINGS_MODULE="notifyhub.settings.production",
        ALLOWED_HOSTS="notify.example.com",
    )
    environment.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_the_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DEBUG": "true"}, "DEBUG=true is refused by notifyhub.settings.production"),
        ({"SECRET_KEY": "a" * 60}, "SECRET_KEY needs 50 characters or more, 5 of them different"),
        ({"JWT_SIGNING_KEY": "b" * 40}, "JWT_SIGNING_KEY needs 50 characters or more"),
    ],
)
def test_production_refuses_debug_and_weak_keys(overrides, expected):
    result = manage("check", **overrides)

    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


PRINT_SECURITY = (
    "from django.test import Client; c = Client(); "
    "r = c.get('/api/notifications/', HTTP_HOST='notify.example.com'); print(r.status_code, r.get('Location')); "
    "r = c.get('/livez', HTTP_HOST='notify.example.com'); print(r.status_code); "
    "r = c.get('/livez', HTTP_HOST='notify.example.com', secure=True); print(r['Strict-Transport-Security'])"
)


def test_plain_http_is_redirected_but_probes_are_not_and_https_answers_carry_hsts():
    result = manage("shell", "-c", PRINT_SECURITY)

    assert result.returncode == 0, result.stderr
    redirect, probe, hsts = result.stdout.strip().splitlines()[-3:]
    assert redirect == "301 https://notify.example.com/api/notifications/"
    assert probe == "200"
    assert hsts == "max-age=31536000; includeSubDomains"
