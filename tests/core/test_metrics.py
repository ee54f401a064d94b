"""The host's metrics directory (core/metrics.py): the values of exited processes stay in the sums, their live
gauges do not."""

from pathlib import Path

from core import metrics as host_metrics
from tests.support.metrics import metrics_writer, parse, value
from tests.support.settings_process import load_settings


def test_a_killed_process_counts_in_the_totals_but_no_longer_in_the_live_gauges():
    before = parse(host_metrics.exposition())
    writer = metrics_writer(host_metrics.METRICS_DIR, stay=True)
    try:
        alive = parse(host_metrics.exposition())
        assert value(alive, "notifyhub_test_live") == value(before, "notifyhub_test_live") + 1
    finally:
        writer.kill()
        writer.wait()
    live_file = Path(host_metrics.METRICS_DIR, f"gauge_livesum_{writer.pid}.db")
    assert live_file.exists()

    after = parse(host_metrics.exposition())

    assert not live_file.exists()
    assert value(after, "notifyhub_test_live") == value(before, "notifyhub_test_live")
    assert value(after, "notifyhub_test_writes_total") == value(before, "notifyhub_test_writes_total") + 1


def test_a_notifyhub_process_forgets_its_live_gauges_when_it_exits_and_keeps_its_counters(tmp_path):
    result = load_settings(
        "import os; from notifications import metrics; "
        "metrics.HUB_CONNECTIONS.labels('native').inc(); metrics.SWEEP_RUNS.inc(); print(os.getpid())",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    pid = result.stdout.strip()
    assert not Path(tmp_path, f"gauge_livesum_{pid}.db").exists()
    assert Path(tmp_path, f"counter_{pid}.db").exists()


def test_a_process_that_imported_prometheus_client_before_the_settings_is_refused():
    # Its values would stay its own (in memory): no scrape would ever see them.
    result = load_settings(
        "print('started')",
        setup="import prometheus_client; import django; django.setup()",
        PROMETHEUS_MULTIPROC_DIR=None,
    )

    assert result.returncode == 1
    assert "prometheus-client is not in multiprocess mode" in result.stderr
