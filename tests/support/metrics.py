"""Reading /metrics as Prometheus does: the exposition parsed by prometheus-client's own parser.

    samples = scrape(server)                       # a real server's GET /metrics (must answer 200)
    samples = parse(core.metrics.exposition())     # this process's view of the same directory
    value(samples, "notifyhub_acks_total", outcome="acknowledged")   # 0.0 when the series is absent

`metrics_writer(directory)` starts a process that writes metrics there as a NotifyHub process would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import REPO_ROOT, ListeningServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: bytes | str) -> Samples:
    """Every sample of an exposition, by (sample name, labels)."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(server: ListeningServer, headers: dict | None = None) -> Samples:
    response = server.request("GET", "/metrics", headers=headers)
    assert response.status == 200, (response.status, response.data[:500])
    assert response.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    return parse(response.data)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels, 0.0 if there is none."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def values(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample named `name`, by its labels."""
    return {labels: sample for (sample_name, labels), sample in samples.items() if sample_name == name}


# A counter, and a live gauge as the hub's open connections; then the process exits leaving its files behind (no
# NotifyHub exit handler runs in it: as a killed process), or, with stay, waits to be killed.
_WRITER = """
import sys
from prometheus_client import Counter, Gauge
Counter("notifyhub_test_writes", "A test process's writes").inc()
Gauge("notifyhub_test_live", "A test process's live gauge", multiprocess_mode="livesum").inc()
print("written", flush=True)
if sys.argv[1] == "stay":
    sys.stdin.read()
"""


def metrics_writer(directory: Path | str, *, stay: bool = False) -> subprocess.Popen:
    """A process that has written a counter and a live gauge to `directory` (started, with its values written)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, "stay" if stay else "exit"],
        cwd=REPO_ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "written\n"
    return process
