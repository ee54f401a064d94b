"""The results: a markdown table (`latest.md`) and a latency CDF plot (`latency-cdf.png`) beside it."""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.options import Options
from bench.stats import Summary

BARE = "bare"
MARKDOWN_NAME = "latest.md"
PLOT_NAME = "latency-cdf.png"


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    digits: int = 1
    target: str = ""
    # Whether a hub figure meets the target: f(hub median, hub ÷ bare ratio or None) -> bool.
    meets: object = None


def metrics_for(options: Options) -> list[Metric]:
    members = f"{options.department_size:,}"
    memory = [
        Metric(
            f"rss_per_conn_{point}",
            f"4. RSS growth per idle connection, {point:,} connections",
            "KiB",
            target="≤ 28 KiB",
            meets=lambda value, _ratio: value <= 28,
        )
        for point in options.memory_points
    ]
    return [
        Metric(
            "latency_p50",
            f"1. single-recipient latency p50 ({options.rate:g}/s, {options.clients:,} clients)",
            "ms",
        ),
        Metric("latency_p95", "1. single-recipient latency p95", "ms"),
        Metric("latency_p99", "1. single-recipient latency p99", "ms", target="≤ 50 ms", meets=lambda v, _r: v <= 50),
        Metric("latency_rate", "1. publish rate achieved", "/s", digits=0),
        Metric("fanout_p50", f"2. fan-out to {members} members: time to last member p50", "ms"),
        Metric(
            "fanout_p99",
            "2. fan-out: time to last member p99",
            "ms",
            target="≤ 2.5× bare",
            meets=lambda _v, r: r is not None and r <= 2.5,
        ),
        Metric("fanout_violations", "2. fan-out: members missing it or getting it twice", "", digits=0),
        Metric(
            "throughput",
            "3. saturation throughput",
            "deliveries/s",
            digits=0,
            target="≥ 0.25× bare",
            meets=lambda _v, r: r is not None and r >= 0.25,
        ),
        Metric(
            "cpu_per_1000",
            "3. server CPU per 1,000 deliveries",
            "CPU-s",
            digits=3,
            target="≤ 5× bare",
            meets=lambda _v, r: r is not None and r <= 5,
        ),
        *memory,
        Metric(
            "connect_rate",
            "connections opened per second (first memory point)",
            "/s",
            digits=0,
            target="≥ 1,000/s",
            meets=lambda v, _r: v >= 1_000,
        ),
        Metric(
            "acks_per_s",
            "5. acks processed and persisted",
            "acks/s",
            digits=0,
            target="≥ 10,000/s",
            meets=lambda v, _r: v >= 10_000,
        ),
        Metric(
            "batch_single_rate",
            "6. single-recipient publishes back to back, one per request",
            "/s",
            digits=0,
            target="≥ 300/s",
            meets=lambda v, _r: v >= 300,
        ),
        Metric(
            "batch_rate",
            f"6. single-recipient publishes back to back, {options.batch_size:,} per batch request",
            "/s",
            digits=0,
        ),
        Metric("batch_p50", "6. batch publish: time to the client's socket p50", "ms"),
        Metric("batch_p99", "6. batch publish: time to the client's socket p99", "ms"),
        *storm_metrics(options),
    ]


def storm_metrics(options: Options) -> list[Metric]:
    """Scenario 7; "the restart" is when the restarted web process accepts connections again."""
    return [
        Metric(
            "storm_back_s",
            f"7. reconnect storm ({options.storm_clients:,} clients): all clients back, replay included, after the "
            "restart",
            "s",
            target="≤ 10 s",
            meets=lambda v, _r: v <= 10,
        ),
        Metric("storm_outage_s", "7. reconnect storm: SIGTERM until the restarted process listens", "s"),
        Metric("storm_back_after_sigterm_s", "7. reconnect storm: all clients back, after SIGTERM", "s"),
        Metric(
            "storm_connect_rate", "7. reconnect storm: connections opened per second (restart to last)", "/s", digits=0
        ),
        Metric("storm_connect_peak", "7. reconnect storm: connections opened in the busiest second", "", digits=0),
        Metric(
            "storm_live_p99", f"7. reconnect storm: live latency p99 ({options.storm_rate:g}/s to clients back)", "ms"
        ),
        Metric("storm_live_max", "7. reconnect storm: live latency, peak", "ms"),
        Metric(
            "storm_lost",
            "7. reconnect storm: notifications lost (published while down, or live)",
            "",
            digits=0,
            target="0",
            meets=lambda v, _r: v == 0,
        ),
        Metric(
            "storm_duplicated",
            "7. reconnect storm: notifications delivered twice",
            "",
            digits=0,
            target="0",
            meets=lambda v, _r: v == 0,
        ),
    ]


@dataclass
class Results:
    """Every figure per server, and per hub its ratios to the bare rounds paired with it in time."""

    servers: tuple[str, ...]
    values: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    ratios: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    samples: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    notes: dict = field(default_factory=lambda: defaultdict(list))

    def add(self, server: str, label: str, outcome) -> None:
        for key, value in outcome.metrics.items():
            self.values[server][key].append(value)
        for name, values in outcome.samples.items():
            self.samples[server][name].extend(values)
        self.notes[server].extend(f"{label}: {note}" for note in outcome.notes)

    def pair(self, hub: str, hub_outcome, bare_outcome) -> None:
        """Record hub ÷ bare for figures measured back to back (the same round, or both ramps)."""
        for key, value in hub_outcome.metrics.items():
            bare = bare_outcome.metrics.get(key)
            if bare and math.isfinite(bare) and value is not None and math.isfinite(value):
                self.ratios[hub][key].append(value / bare)

    def summary(self, server: str, key: str) -> Summary | None:
        return Summary.of(self.values.get(server, {}).get(key, []))

    def ratio(self, hub: str, key: str) -> float | None:
        """The median of the paired hub ÷ bare ratios."""
        summary = Summary.of(self.ratios.get(hub, {}).get(key, []))
        return None if summary is None else summary.median


def _number(value: float, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}"


def _cell(summary: Summary | None, metric: Metric) -> str:
    if summary is None:
        return "–"
    text = _number(summary.median, metric.digits)
    if summary.rounds > 1:
        text += f" [{_number(summary.low, metric.digits)}–{_number(summary.high, metric.digits)}]"
    return text


def _ratio_cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def results_table(results: Results, options: Options) -> str:
    hubs = [server for server in results.servers if server != BARE]
    has_bare = BARE in results.servers
    header = ["metric", "unit"] + ([BARE] if has_bare else [])
    for hub in hubs:
        header += [hub] + ([f"{hub} ÷ bare"] if has_bare else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in metrics_for(options):
        summaries = {server: results.summary(server, metric.key) for server in results.servers}
        if all(summary is None for summary in summaries.values()):
            continue
        row = [metric.label, metric.unit]
        if has_bare:
            row.append(_cell(summaries[BARE], metric))
        for hub in hubs:
            row.append(_cell(summaries[hub], metric))
            if has_bare:
                row.append(_ratio_cell(results.ratio(hub, metric.key)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets_table(results: Results, options: Options) -> str:
    hubs = [server for server in results.servers if server != BARE]
    if not hubs:
        return ""
    lines = ["| target | " + " | ".join(hubs) + " |", "|---|" + "---|" * len(hubs)]
    for metric in metrics_for(options):
        if not metric.target:
            continue
        row = [f"{metric.label}: {metric.target}"]
        for hub in hubs:
            summary = results.summary(hub, metric.key)
            if summary is None:
                row.append("not measured")
                continue
            hub_ratio = results.ratio(hub, metric.key)
            if "bare" in metric.target and hub_ratio is None:
                row.append("no bare figure")
                continue
            met = metric.meets(summary.median, hub_ratio)
            shown = _number(summary.median, metric.digits) + (f" ({hub_ratio:.2f}×)" if hub_ratio is not None else "")
            row.append(f"{'met' if met else 'MISSED'}: {shown}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown(results: Results, options: Options, meta: dict) -> str:
    parts = [
        "# NotifyHub benchmark: latest run",
        "",
        "Made by `make bench` (`python -m bench`). Each cell is the median over rounds with the "
        "[min–max] spread. The bare baseline (a `websockets` server on uvloop fed by Redis pub/sub, "
        "`bench/bare_server.py`) stays up beside each hub server, and every hub round is paired with "
        "a bare round run right before or after it on the same client processes: a ratio is the "
        "median of those paired hub ÷ bare ratios (for throughput and rates higher is better, for "
        "everything else lower). Memory and connect rate are read once per server, while its "
        "clients connect. The machine is shared and noisy: trust ratios and spreads over single figures.",
        "",
        results_table(results, options),
        "",
        "## Targets",
        "",
        targets_table(results, options),
        "",
        "## Run",
        "",
        *(f"- {key}: {value}" for key, value in meta.items()),
    ]
    notes = [(server, note) for server in results.servers for note in results.notes.get(server, [])]
    parts += ["", "## Notes", ""]
    parts += [f"- {server}, {note}" for server, note in notes] or ["- none: every delivery arrived exactly once"]
    return "\n".join(parts) + "\n"


def write_plot(path: Path, results: Results) -> bool:
    """Latency CDFs of scenarios 1 and 2 per server; False if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter, ScalarFormatter
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, name, title in (
        (axes[0], "latency", "1. single-recipient latency (publish → client)"),
        (axes[1], "fanout", "2. department fan-out, every member's latency"),
    ):
        for server in results.servers:
            values = sorted(results.samples.get(server, {}).get(name, []))
            if values:
                fractions = [(index + 1) / len(values) for index in range(len(values))]
                axis.plot(values, fractions, label=f"{server} (n={len(values):,})")
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("milliseconds (log scale)")
        axis.set_ylabel("fraction of deliveries")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write(results: Results, options: Options, meta: dict) -> tuple[Path, Path | None]:
    options.output.mkdir(parents=True, exist_ok=True)
    markdown_path = options.output / MARKDOWN_NAME
    markdown_path.write_text(markdown(results, options, meta))
    plot_path = options.output / PLOT_NAME
    return markdown_path, plot_path if write_plot(plot_path, results) else None
