"""A real Celery worker, sweeper and beat, started from the Procfile's lines, for end-to-end delivery tests.

    stack = CeleryStack.start(environment=child_environment({...}), log_dir=tmp_path)
    ...
    stack.stop()

The environment must point firebase-admin at the fake FCM server (`FAKE_FCM_URL`, `FCM_CREDENTIALS_FILE`):
the Celery lines run `python -m tests.support.celery_with_fake_fcm` (see tests/support/procfile.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import redis
from django.conf import settings

from tests.support.presence_registry import settle_presence_registry
from tests.support.procfile import procfile_process
from tests.support.servers import ServerProcess, child_environment


class CeleryStack(NamedTuple):
    worker: ServerProcess  # the default queue: push tasks
    sweeper: ServerProcess  # the sweep queue
    beat: ServerProcess

    @classmethod
    def start(cls, *, environment: dict[str, str], log_dir: Path, concurrency: int = 1) -> CeleryStack:
        environment = {
            **environment,
            "CELERY_CONCURRENCY": str(concurrency),
            "CELERY_BEAT_SCHEDULE_FILE": str(log_dir / "beat-schedule"),
        }
        started = []
        try:
            for name in cls._fields:
                process = procfile_process(name, env=environment, log_path=log_dir / f"{name}.log")
                ready = "beat: Starting" if name == "beat" else " ready."
                process.start(ready=lambda process=process, ready=ready: ready in process.log_text(), timeout=60)
                started.append(process)
        except BaseException:
            for process in started:
                process.stop()
            raise
        return cls(*started)

    def stop(self) -> None:
        for process in reversed(self):
            process.stop()

    def pool_child_pids(self) -> list[int]:
        """The worker's pool processes (the ones that run push tasks)."""
        pid = self.worker.process.pid
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def logs(self) -> str:
        return "\n".join(f"--- {process.name}\n{process.log_text()[-4000:]}" for process in self)


def fake_fcm_environment(fake_fcm_server, overrides: dict[str, str]) -> dict[str, str]:
    """The environment of a stack pushing through the real firebase-admin SDK to `fake_fcm_server`, plus `overrides`."""
    return child_environment(
        {
            "NOTIFY_PUSH_BACKEND": "fcm",
            "FCM_CREDENTIALS_FILE": str(fake_fcm_server.credentials_file),
            "FAKE_FCM_URL": fake_fcm_server.send_url,
            **overrides,
        }
    )


def empty_test_redis() -> None:
    """Empty the test Redis database before a stack starts (leftovers of earlier modules must not reach its
    worker), with the presence registry established again."""
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.flushdb()
    settle_presence_registry(broker)
    broker.close()
