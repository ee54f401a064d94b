"""The Procfile's process lines, run by tests as `make run` runs them (honcho runs each line with `sh -c`).

    worker = procfile_process("worker", env=child_environment({...}), log_path=tmp_path / "worker.log")
    worker.start(ready=lambda: " ready." in worker.log_text())

Celery lines run `python -m tests.support.celery_with_fake_fcm` instead of `celery`: the same command line, with
firebase-admin sending to the fake FCM server (`FAKE_FCM_URL`, see tests/support/celery_with_fake_fcm.py).
"""

import shlex
import sys

from tests.support.servers import REPO_ROOT, ServerProcess

CELERY_IN_TESTS = f"{shlex.quote(sys.executable)} -m tests.support.celery_with_fake_fcm"


def procfile_lines() -> dict[str, str]:
    """{process name: command} as the Procfile says."""
    lines = {}
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            lines[name.strip()] = command.strip()
    return lines


def procfile_command(name: str) -> list[str]:
    """The argv that runs one Procfile line (its ${VAR:-default} expanded by the shell, from the environment)."""
    command = procfile_lines()[name]
    if command.startswith("celery "):
        command = CELERY_IN_TESTS + command.removeprefix("celery")
    return ["sh", "-c", f"exec {command}"]


def procfile_process(name: str, *, env: dict[str, str], log_path) -> ServerProcess:
    return ServerProcess(name, procfile_command(name), env=env, log_path=log_path)
