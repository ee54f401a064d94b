"""Delivery settings: the push backend follows the credentials; .env.example loads as `make run` copies it.

Bad values are among test_settings.py's one-line configuration errors.
"""

from tests.support.servers import REPO_ROOT
from tests.support.settings_process import load_settings


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


def test_beat_runs_the_retention_pruner_on_the_sweep_queue_at_the_configured_interval():
    result = load_settings(
        "s = settings.CELERY_BEAT_SCHEDULE['prune-retention']; print(s['task'], s['schedule'], s['options']['queue'])",
        NOTIFY_RETENTION_INTERVAL="600",
    )
    assert result.stdout.strip() == "notifications.prune_retention 600.0 sweep", result.stderr


def test_env_example_as_make_run_copies_it_loads_with_simulated_pushes():
    result = load_settings(
        "print(settings.NOTIFY_PUSH_BACKEND, settings.NOTIFY_MAX_WS_ATTEMPTS, settings.NOTIFY_SWEEP_INTERVAL)",
        ENV_FILE=str(REPO_ROOT / ".env.example"),
        SECRET_KEY=None,
        DEBUG=None,
        DATABASE_URL=None,
        REDIS_URL=None,
    )
    assert result.stdout.strip() == "log 3 5.0", result.stderr
