"""The test suite's settings (pyproject.toml's DJANGO_SETTINGS_MODULE): the shared ones, and what tests change.

Servers and workers that tests start as processes inherit this module from the environment.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from notifyhub.settings import *  # noqa: F403 - the shared settings, then the differences below
from notifyhub.settings import BASE_DIR, METRICS_DIR

# PBKDF2 is slow by design; the tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Metrics: a directory per test run, unless the environment names one. The servers and workers a run starts
# inherit it (they sum their values with this process's), and two runs on one machine never add up each
# other's counters. Nothing has made a metric yet: prometheus-client reads the directory at the first one.
if Path(METRICS_DIR) == BASE_DIR / ".metrics":
    METRICS_DIR = tempfile.mkdtemp(prefix="notifyhub-test-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
    atexit.register(shutil.rmtree, METRICS_DIR, ignore_errors=True)
