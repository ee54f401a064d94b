"""py-spy around a scenario (`--profile connect,throughput,...`): where the server's CPU goes, as evidence.

py-spy samples the running server from outside (no code change, small
overhead with --nonblocking) until it is interrupted, and writes collapsed
stacks; `hot_spots` turns them into the functions with the most samples,
on-CPU ("self") and including callees ("total"). Time spent in C (the event
loop, socket I/O, psycopg's libpq) shows up under the Python frame that called it.
"""

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"


def py_spy_path() -> str | None:
    return str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy")


def start(pid: int, *, output: Path, on_gil: bool = False) -> subprocess.Popen | None:
    """Start sampling `pid` into `output` (collapsed stacks) until `finish`; None without py-spy.

    `on_gil`: only the thread holding the GIL (what costs CPU), not threads waiting for the database.
    """
    binary = py_spy_path()
    if binary is None:
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    # --subprocesses: with WEB_CONCURRENCY > 1 the requests are served by uvicorn's workers, not `pid`.
    argv = [binary, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking", "--subprocesses"]
    argv += ["--gil"] if on_gil else []
    return subprocess.Popen([*argv, "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen | None, *, timeout: float = 30) -> str | None:
    """Stop py-spy (it writes its output on SIGINT); returns its error text if it failed."""
    if process is None:
        return "py-spy is not installed (make bench installs it from bench/requirements.txt)"
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return "py-spy did not stop"
    return None if process.returncode == 0 else stderr.decode(errors="replace").strip()[-300:]


def _short(frame: str) -> str:
    """`send (websockets/protocol.py:123)` → `send (websockets/protocol.py)`: group a function's lines."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "lib/python3":
                path = "stdlib" + path[path.find("/") :]
            break
    else:
        path = path.rsplit("/work/", 1)[-1]
    return f"{name} ({path})"


def _stacks(collapsed: Path):
    """(frames, samples) per line of py-spy's collapsed output; a frame is `function (path:line)`."""
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack.split(";"), int(count_text)


def hot_spots(collapsed: Path, *, top: int = 12) -> list[tuple[str, float, float]]:
    """[(function, self %, total %)] by self time, from py-spy's collapsed output."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for stack, count in _stacks(collapsed):
        frames = [_short(frame) for frame in stack]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return []
    return [(frame, 100 * count / total, 100 * inclusive[frame] / total) for frame, count in own.most_common(top)]


def project_hot_spots(collapsed: Path, *, root: Path, top: int = 12) -> list[tuple[str, float]]:
    """[(function, total %)] of the project's own functions (files under `root`), by time including callees.

    Self time is blurred by the GIL (a thread waiting for it is sampled wherever it
    stopped); the share of samples under each of our functions says where to look.
    """
    root = root.resolve()
    ours_by_path: dict[str, str | None] = {}

    def project_path(path: str) -> str | None:
        """The path relative to `root` if it is one of the project's files (py-spy shortens paths)."""
        if path not in ours_by_path:
            candidate = Path(path) if path.startswith("/") else root / path
            inside = candidate.is_file() and candidate.resolve().is_relative_to(root)
            relative = str(candidate.resolve().relative_to(root)) if inside else None
            ours_by_path[path] = None if relative is None or relative.startswith("bench/") else relative
        return ours_by_path[path]

    inclusive: Counter = Counter()
    total = 0
    for stack, count in _stacks(collapsed):
        total += count
        ours = set()
        for frame in stack:
            name, _, where = frame.partition(" (")
            relative = project_path(where.rsplit(":", 1)[0])
            if relative is not None:
                ours.add(f"{name} ({relative})")
        for frame in ours:
            inclusive[frame] += count
    if not total:
        return []
    return [(frame, 100 * count / total) for frame, count in inclusive.most_common(top)]


def hot_spots_markdown(title: str, spots: list[tuple[str, float, float]], ours: list[tuple[str, float]]) -> str:
    lines = [f"### {title}", "", "| function (module) | self % | total % |", "|---|---|---|"]
    lines += [f"| `{frame}` | {own:.1f} | {inclusive:.1f} |" for frame, own, inclusive in spots]
    if ours:
        lines += ["", "| NotifyHub function | total % |", "|---|---|"]
        lines += [f"| `{frame}` | {inclusive:.1f} |" for frame, inclusive in ours]
    return "\n".join(lines)


@dataclass
class Spent:
    """What a block of a one-server measurement cost: wall-clock seconds and the server's CPU seconds."""

    seconds: float = 0.0
    cpu: float = 0.0

    def line(self, server: str, what: str, plural: str, count: int) -> str:
        """The one line a one-server measurement prints: `count` of `what` (connect, publish) in this block."""
        return (
            f"server={server} {plural}={count} seconds={self.seconds:.2f} {plural}_per_s={count / self.seconds:.1f}"
            f" cpu_ms_per_{what}={self.cpu / count * 1000:.2f}"
        )


@contextlib.asynccontextmanager
async def spent_by(server, *, profile_to: Path | None = None):
    """Measure the block: `Spent` is filled in when it ends; with `profile_to`, py-spy (on-GIL samples) records
    the server meanwhile into that file (an error is printed, not raised: the figures still count)."""
    spent = Spent()
    spy = start(server.pid, output=profile_to, on_gil=True) if profile_to else None
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    try:
        yield spent
    finally:
        spent.seconds = time.monotonic() - started
        spent.cpu = server.cpu_seconds() - cpu_before
        if spy is not None:
            error = await asyncio.to_thread(finish, spy)
            if error:
                print(f"py-spy: {error}", file=sys.stderr)
