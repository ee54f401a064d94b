"""Delivery settings: the push backend follows the credentials, and bad values stop the process with one line."""

import pytest

from tests.test_settings import REPO, load_settings


def test_without_fcm_credentials_pushes_are_simulated_by_the_log_backend():
    result = load_settings("print(settings.NOTIFY_PUSH_BACKEND)", FCM_CREDENTIALS_FILE=None)
    assert result.stdout.strip() == "log", result.stderr


def test_with_fcm_credentials_the_fcm_backend_is_the_default(tmp_path):
    credentials = tmp_path / "service-account.json"
    credentials.write_text("{}")
    result = load_settings("print(settings.NOTIFY_PUSH_BACKEND)", FCM_CREDENTIALS_FILE=str(credentials))
    assert result.stdout.strip() == "fcm", result.stderr


def test_beat_runs_the_sweep_at_the_configured_interval():
    result = load_settings(
        "s = settings.CELERY_BEAT_SCHEDULE['sweep-deliveries']; print(s['task'], s['schedule'])",
        NOTIFY_SWEEP_INTERVAL="2.5",
    )
    assert result.stdout.strip() == "notifications.sweep_deliveries 2.5", result.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"NOTIFY_PUSH_BACKEND": "apns"}, "NOTIFY_PUSH_BACKEND='apns' must be one of: fcm, log"),
        (
            {"NOTIFY_PUSH_BACKEND": "fcm", "FCM_CREDENTIALS_FILE": None, "GOOGLE_APPLICATION_CREDENTIALS": None},
            "NOTIFY_PUSH_BACKEND=fcm needs FCM_CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS",
        ),
        ({"FCM_CREDENTIALS_FILE": "/no/such/file.json"}, "FCM_CREDENTIALS_FILE='/no/such/file.json' is not a readable"),
        ({"NOTIFY_MAX_WS_ATTEMPTS": "0"}, "NOTIFY_MAX_WS_ATTEMPTS=0 must be at least 1"),
    ],
)
def test_bad_delivery_setting_fails_with_one_clear_line(overrides, expected):
    result = load_settings(**overrides)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("NotifyHub configuration error: ")
    assert expected in lines[0]


def test_env_example_as_make_run_copies_it_loads_with_simulated_pushes():
    result = load_settings(
        "print(settings.NOTIFY_PUSH_BACKEND, settings.NOTIFY_MAX_WS_ATTEMPTS, settings.NOTIFY_SWEEP_INTERVAL)",
        ENV_FILE=str(REPO / ".env.example"),
        SECRET_KEY=None,
        DEBUG=None,
        DATABASE_URL=None,
        REDIS_URL=None,
    )
    assert result.stdout.strip() == "log 3 5.0", result.stderr
