"""The Procfile's lines as processes the soak can start, stop, kill and start again.

The soak runs *whatever lines the Procfile has* (web, worker, beat, and any
line added later, e.g. a dedicated sweeper worker), each with `sh -c` as
honcho would, in the environment `bench.soak.stack` builds. Two changes:

- a line whose command starts with `celery` runs
  `<python> -m tests.support.celery_with_fake_fcm` instead, the same Celery
  command line with firebase-admin sending to the fake FCM server
  (FAKE_FCM_URL);
- the command is prefixed with `exec`, so the shell becomes the process: a
  signal sent to the pid reaches the server itself, as under a process manager.

Each process gets its own session (process group): `kill -9` takes the whole
group (a Celery worker and its pool children die together, as when its host
or container dies). Output goes to `<logs>/<name>.log`, appended across
restarts; its tail is shown when a process fails to start.
"""

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CELERY_WITH_FAKE_FCM = "-m tests.support.celery_with_fake_fcm"


class ProcessStartError(RuntimeError):
    """A Procfile process exited or did not become ready; the message holds its log tail."""


@dataclass(frozen=True)
class ProcfileLine:
    name: str
    command: str

    @property
    def is_web(self) -> bool:
        return self.name == "web"

    @property
    def is_celery(self) -> bool:
        return self.command.split(maxsplit=1)[0] == "celery"

    @property
    def is_celery_worker(self) -> bool:
        return self.is_celery and " worker" in f" {self.command}"

    @property
    def is_celery_beat(self) -> bool:
        return self.is_celery and " beat" in f" {self.command}"


def parse_procfile(text: str) -> list[ProcfileLine]:
    """`name: command` lines, in order (blank lines and `#` comments skipped)."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, command = stripped.partition(":")
        if not separator or not name.strip() or not command.strip():
            raise ValueError(f"not a Procfile line: {raw!r}")
        lines.append(ProcfileLine(name.strip(), command.strip()))
    return lines


def shell_command(line: ProcfileLine, *, python: str = sys.executable) -> str:
    """What `sh -c` runs for a line: `exec <command>`, celery replaced by the fake-FCM wrapper."""
    command = line.command
    if line.is_celery:
        command = f"{shlex.quote(python)} {CELERY_WITH_FAKE_FCM}{command[len('celery') :]}"
    return f"exec {command}"


def _port_accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class ProcfileProcess:
    """One Procfile line, run as a child process; see the module docstring."""

    def __init__(self, line: ProcfileLine, *, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        self.line = line
        self.env = env
        self.port = port
        self.log_path = log_dir / f"{line.name}.log"
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    @property
    def name(self) -> str:
        return self.line.name

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 90) -> float:
        """Start and wait until ready (web: its port accepts; Celery: its ready line); returns the seconds it took."""
        started = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n=== {time.strftime('%H:%M:%S')} sh -c {shell_command(self.line)!r}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", shell_command(self.line)],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = self._readiness()
        deadline = started + timeout
        while not ready():
            if self.process.poll() is not None:
                raise ProcessStartError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ProcessStartError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def terminate(self, *, timeout: float = 30) -> tuple[float, bool]:
        """SIGTERM, and wait for the exit (SIGKILL to the group after `timeout`).

        Returns the seconds it took and whether it had to be killed.
        """
        started, killed = time.monotonic(), False
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                killed = True
        self._reap_group()
        return time.monotonic() - started, killed

    def kill(self) -> None:
        """`kill -9` the process and everything in its group."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _new_output(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def _readiness(self) -> Callable[[], bool]:
        if self.line.is_web:
            if self.port is None:
                raise ValueError("the web line needs a port")
            return lambda: _port_accepts(self.port)
        if self.line.is_celery_worker:
            return lambda: " ready." in self._new_output()
        if self.line.is_celery_beat:
            return lambda: "beat: Starting" in self._new_output()
        alive_since = time.monotonic()
        return lambda: time.monotonic() - alive_since > 2  # anything else: alive for 2 s

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.process.pid, signum)

    def _reap_group(self) -> None:
        """A killed or stopped server may leave children in its group (e.g. Celery's pool): take them too."""
        if self.process is not None:
            self._signal_group(signal.SIGKILL)
