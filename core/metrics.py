"""The metrics of every NotifyHub process on this host, in one exposition for /metrics (core/api/metrics.py).

prometheus-client's multiprocess mode: each process writes its values to files of its own (named by its pid)
in `settings.METRICS_DIR`, an increment being a write to a memory-mapped file, and a scrape of any web process
reads and sums the files of all of them: daphne's process or every uvicorn worker, the Celery worker's pool
processes, the sweeper, beat. The directory is per host, so Prometheus scrapes every host (docs/metrics.md).

- Counters and histograms of a process that has exited stay in the sum (its files stay), so a total never goes
  down when one process restarts. `metrics_dir_reset()` empties the directory when the whole system starts
  (`manage.py preflight`, run by `make run`), which Prometheus reads as the counter reset it is.
- Gauges of live things (open connections, router health: the `live*` modes) count living processes only: a
  process forgets its own when it exits, and each scrape forgets those of processes that are gone (killed, or
  ended without running their exit handlers), so a pid the system hands out again never inherits them.

What an app reads at scrape time rather than counts (who is online, from Redis) it adds with
`register_collector` from its AppConfig.ready(): this module imports no app. Apps define their metrics after
importing this module, which checks that prometheus-client is in multiprocess mode and that the directory exists.
"""

import atexit
import glob
import logging
import os
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_process_dead
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# prometheus-client's files: <type>[_<gauge mode>]_<pid>.db, e.g. counter_4242.db, gauge_livesum_4242.db.
VALUES_FILE = re.compile(r"^(?P<kind>[a-z]+(?:_[a-z]+)?)_(?P<pid>\d+)\.db\Z")


def mark_process_dead(pid: int, path: str) -> None:
    """Forget the live gauges of process `pid` (prometheus-client's function, which it leaves untyped)."""
    _mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _multiprocess_dir() -> Path:
    """The metrics directory, created if missing; refuses a process whose values would stay its own."""
    directory = Path(settings.METRICS_DIR)
    # Set by the settings before anything imported prometheus-client; it chose its value store then.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") != str(directory) or not values.ValueClass._multiprocess:
        raise ImproperlyConfigured(
            "prometheus-client is not in multiprocess mode for METRICS_DIR: something imported it before the "
            "settings set PROMETHEUS_MULTIPROC_DIR"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR={directory} cannot be created: {error}") from None
    return directory


METRICS_DIR = _multiprocess_dir()


def forget_this_process() -> None:
    """This process's live gauges leave the host's metrics: it is exiting. At exit, and where a process ends
    without running exit handlers (uvicorn's worker re-raises SIGTERM; the shutdown deadline's `os._exit`)."""
    mark_process_dead(os.getpid(), str(METRICS_DIR))


# The pid at exit, not at import: a forked child that exits normally forgets its own live gauges, not its parent's.
atexit.register(forget_this_process)


# --- Scrape ------------------------------------------------------------------------------------------------------

_registry: CollectorRegistry | None = None
_scrape_time_collectors: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """Add a collector run at every scrape (once per process, from an AppConfig.ready()); it must never raise."""
    _scrape_time_collectors.append(collector)


def exposition() -> bytes:
    """Every process's metrics on this host plus the scrape-time collectors', in the Prometheus text format."""
    global _registry
    if _registry is None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(METRICS_DIR))  # type: ignore[no-untyped-call]
        for collector in _scrape_time_collectors:
            registry.register(collector)
        _registry = registry
    forget_dead_processes()
    return generate_latest(_registry)


def forget_dead_processes() -> list[int]:
    """Drop the live gauges of processes that no longer run (their other values stay); returns their pids."""
    dead = sorted({pid for kind, pid in _values_files() if kind.startswith("gauge_live") and not _process_alive(pid)})
    for pid in dead:
        mark_process_dead(pid, str(METRICS_DIR))
    return dead


def metrics_dir_reset() -> list[int]:
    """Empty the metrics directory when the system starts. Returns the pids of processes still writing there (another
    `make run` of this checkout, a worker left running): then nothing is removed."""
    files = _values_files()
    alive = sorted({pid for _, pid in files if pid != os.getpid() and _process_alive(pid)})
    if not alive:
        for kind, pid in files:
            Path(METRICS_DIR, f"{kind}_{pid}.db").unlink(missing_ok=True)
    return alive


def _values_files() -> list[tuple[str, int]]:
    """(kind, pid) of every values file in the directory."""
    found = []
    for path in glob.glob(os.path.join(METRICS_DIR, "*.db")):
        if match := VALUES_FILE.match(os.path.basename(path)):
            found.append((match["kind"], int(match["pid"])))
    return found


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True
