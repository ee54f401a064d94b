"""The web process's garbage collector: what it loaded at start-up frozen, the young collected less often."""

import gc
import os
import subprocess
import sys
from pathlib import Path

from notifyhub import process

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_web_application_freezes_what_it_loaded_and_collects_the_young_less_often():
    # A process of its own: the application is imported once per web process, as the server does it.
    probe = "import gc, notifyhub.asgi; print(gc.get_threshold()[0], gc.get_freeze_count())"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "notifyhub.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    threshold, frozen = map(int, result.stdout.split())
    assert threshold == process.YOUNG_COLLECTION_THRESHOLD
    assert frozen > 50_000  # Django, its apps and the hub, never walked again


def test_the_older_generations_keep_their_thresholds():
    before = gc.get_threshold()
    try:
        process.collect_garbage_less_often()
        assert gc.get_threshold() == (process.YOUNG_COLLECTION_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
