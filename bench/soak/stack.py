"""The real stack under the soak: a private Redis, the fake FCM server, and the Procfile's processes.

Nothing here touches the shared Redis on 6379: the soak's redis-server listens
on a free port and keeps nothing on disk, so a restart (chaos step `redis`) is
a new, empty Redis on the same port. PostgreSQL is the soak's own database.
The fake FCM server (tests/support/fake_fcm.py) runs in the driver's process and
accepts every push; the Celery processes' firebase-admin sends to it.
"""

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak.options import Options
from bench.soak.processes import REPO, ProcfileProcess, parse_procfile
from bench.stack import free_port
from tests.support.fake_fcm import FakeFcm
from tests.support.redis_server import PrivateRedis

# Longer than any soak: the hub closes a socket when the token it opened with expires.
TOKEN_LIFETIME = 86_400


def driver_environment(options: Options, *, secret_key: str, redis_url: str) -> dict[str, str]:
    """What the driver and every process share: the soak database, the private Redis, one signing key, no .env."""
    return {
        "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
        "ENV_FILE": str(REPO / "bench" / "soak" / "no-env-file"),
        "SECRET_KEY": secret_key,
        "DEBUG": "false",
        "DATABASE_URL": options.database_url,
        "REDIS_URL": redis_url,
        "JWT_ACCESS_TOKEN_LIFETIME": str(TOKEN_LIFETIME),
    }


@dataclass
class Stack:
    options: Options
    redis: PrivateRedis = field(default_factory=PrivateRedis)
    fcm: FakeFcm = field(default_factory=FakeFcm)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    web_port: int = field(default_factory=free_port)
    processes: dict[str, ProcfileProcess] = field(default_factory=dict)
    fcm_running: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}"

    @property
    def web(self) -> ProcfileProcess:
        return self.processes["web"]

    def process_line(self, kind: str) -> ProcfileProcess:
        """The process a chaos step acts on: `web`, the Celery `worker` or `beat` (by Procfile name)."""
        if kind not in self.processes:
            raise KeyError(f"the Procfile has no {kind!r} line (it has {', '.join(self.processes)})")
        return self.processes[kind]

    def start_services(self) -> None:
        """Redis and the fake FCM server (the driver needs Redis's URL before Django starts)."""
        self.options.logs.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        self.fcm.start()
        self.fcm_running = True

    def start_processes(self, progress=print) -> None:
        """Every Procfile line, in order, each waited for until ready."""
        environment = self.process_environment()
        lines = parse_procfile(self.options.procfile.read_text())
        if not any(line.is_web for line in lines):
            raise ValueError(f"{self.options.procfile} has no web line")
        for line in lines:
            process = ProcfileProcess(
                line, env=environment, log_dir=self.options.logs, port=self.web_port if line.is_web else None
            )
            self.processes[line.name] = process
            progress(f"starting {line.name}")
            process.start()

    def process_environment(self) -> dict[str, str]:
        """The Procfile processes' environment: the soak's database and Redis, fake FCM, the soak's timings."""
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "DJANGO_"))}
        credentials = self.fcm.write_credentials(self.options.logs)
        environment.update(driver_environment(self.options, secret_key=self.secret_key, redis_url=self.redis.url))
        environment.update(self.options.timings.environment())
        environment.update(
            {
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}",
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "INFO",
                "WEB_BIND": "127.0.0.1",
                "PORT": str(self.web_port),
                # The API's throttles (10 publishes/s by default) would measure the throttle, not the hub.
                "API_RATE_PUBLISH": "1000000/second",
                "API_RATE_USER": "1000000/second",
                "NOTIFY_PUSH_BACKEND": "fcm",
                "FCM_CREDENTIALS_FILE": str(credentials),
                "FAKE_FCM_URL": self.fcm.send_url,
                "CELERY_BEAT_SCHEDULE_FILE": str(self.options.logs / "celerybeat-schedule"),
            }
        )
        return environment

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), then the fake FCM server and Redis."""
        for process in reversed(list(self.processes.values())):
            process.terminate(timeout=15)
        if self.fcm_running:  # FakeFcm.stop() waits for a serve loop that must have started
            self.fcm.stop()
            self.fcm_running = False
        self.redis.stop()
