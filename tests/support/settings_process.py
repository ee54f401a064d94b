"""NotifyHub's settings loaded in a fresh interpreter, from an environment the test controls.

Settings are read once per process: a test of what one environment yields starts a process of its own.
"""

import os
import subprocess
import sys

from tests.support.servers import REPO_ROOT

# A complete, valid environment: each test overrides what it is about.
VALID = {
    "SECRET_KEY": "s" * 50,
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/notifyhub",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DEBUG": "false",
}

PRINT_DEBUG_AND_REDIS = "print(settings.DEBUG, settings.REDIS_URL)"


def load_settings(
    print_code: str = PRINT_DEBUG_AND_REDIS, *, setup: str = "import django; django.setup()", **overrides: str | None
) -> subprocess.CompletedProcess:
    """Run `print_code` after loading the settings from VALID plus `overrides` (None removes a variable)."""
    environment = {key: value for key, value in os.environ.items() if key not in VALID}
    environment.update(VALID)
    environment["ENV_FILE"] = str(REPO_ROOT / "no-such-env-file")
    for key, value in overrides.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    code = f"{setup}; from django.conf import settings; {print_code}"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "notifyhub.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
