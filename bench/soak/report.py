"""The soak's table (printed, and written to `bench/results/soak.md`) and the details below it in the file."""

import math
from pathlib import Path

from bench.soak.result import SoakResult

INTRO = """\
Made by `make soak` (`python -m bench.soak`, see the README): the Procfile's processes on a private Redis and
the soak's own PostgreSQL database, WebSocket clients of several kinds, a publisher through the REST API, and
the chaos steps in turn. The rule: 0 lost, 0 shown twice as new on a connection, 0 deliveries to a connected
user ending `failed`, 0 5xx, and live delivery back at its pre-chaos p99 within {limit:g} s of each step."""


def _count(value: int) -> str:
    return f"{value:,}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "never"
    return f"{value:,.0f} ms"


def _parts(parts: dict[str, int]) -> str:
    return " · ".join(f"{name} {_count(value)}" for name, value in parts.items()) or "–"


def table(result: SoakResult) -> str:
    """The one table: what was published, how every delivery ended, and each rule's figure."""
    verdict = "PASS" if not result.violations() else "FAIL: " + "; ".join(result.violations())
    if result.overloaded:
        verdict += (
            " — **overloaded before any chaos** (the stack fell behind the publishing rate: latency, and repeats "
            "of deliveries whose ack timeout ran out on the way, measure the backlog; lower --rate or --clients)"
        )
    rows = [
        ("**result**", verdict),
        (
            "published (2xx)",
            f"{_count(result.published)} ({_count(result.publishes_replayed)} answered 200, an idempotent replay)",
        ),
        ("publishes never accepted", _count(result.publishes_failed)),
        ("deliveries", _count(result.deliveries)),
        *((f"· {state}", _count(count)) for state, count in result.deliveries_by_state.items()),
        (
            "**lost**",
            f"{_count(result.lost)} (never settled {result.lost_open} · rows missing {result.lost_missing} · "
            f"never reached the user {result.lost_unreached})",
        ),
        (
            "**shown twice as new** (per connection)",
            f"{_count(result.shown_twice_total)} ({_parts(result.shown_twice) if result.shown_twice else 'none'})",
        ),
        ("**5xx responses**", f"{_count(result.server_errors_total)} ({_parts(result.server_errors)})"),
        ("**1011 closes**", _count(result.closes_1011)),
        (
            "**deliveries to connected users ending `failed`**",
            f"{_count(result.connected_failed_total)}"
            + (
                f" ({_parts(result.connected_failed)}; {result.connected_failed_received} of them reached the "
                "client anyway)"
                if result.connected_failed
                else ""
            ),
        ),
        (
            "live latency at always-connected native clients, p50 / p99 / max",
            " / ".join(_ms(result.latency_ms.get(name)) for name in ("p50", "p99", "max")),
        ),
        (
            "publish requests before the first step, sent → answered, p50 / p99",
            " / ".join(
                _ms(result.publish_seconds[name] * 1000) if name in result.publish_seconds else "–"
                for name in ("p50", "p99")
            ),
        ),
        ("baseline p99 (before the first step)", _ms(result.baseline_p99_ms)),
        ("recovery threshold (see the measure below)", _ms(result.recovery_threshold_ms)),
    ]
    for step in result.steps:
        if step.recovery is None:
            back = f"**not within {step.horizon:.0f} s**"
        else:
            back = f"{step.recovery:.1f} s" if step.recovery <= result.recovery_limit else f"**{step.recovery:.1f} s**"
        rows.append(
            (
                f"**{step.name}** at {step.at:.0f} s: live delivery back at the threshold after",
                f"{back} (slowest meanwhile {_ms(step.worst_latency_ms)}; {step.detail}); until the next step: "
                f"{_parts(step.caused) if step.caused else 'nothing counted'}",
            )
        )
    settled = (
        f"all settled {result.settle_seconds:.0f} s after the last publish"
        if result.settled
        else "**not all settled within the bound**"
    )
    rows.append(("settling", f"{settled} (bound {result.settle_bound:g} s)"))
    lines = ["| | |", "|---|---|", *(f"| {label} | {value} |" for label, value in rows)]
    return "\n".join(lines)


def details(result: SoakResult) -> str:
    lines = ["## Details", ""]
    lines += [f"- **{name}**: {value}" for name, value in result.meta.items()]
    lines.append("")
    lines.append("HTTP answers by endpoint (exception names: no answer):")
    lines.append("")
    for endpoint, outcomes in result.http.items():
        lines.append(f"- {endpoint}: {_parts(dict(sorted(outcomes.items())))}")
    lines.append("")
    lines.append(f"- closes the server caused (protocol, code; 1006 = no close frame): {_parts(result.closes)}")
    for name, value in result.info.items():
        lines.append(f"- {name}: {_parts(value) if isinstance(value, dict) else value}")
    if result.lost_examples:
        lines += ["", "Lost, examples:", "", *(f"- {example}" for example in result.lost_examples)]
    if result.shown_twice_examples:
        lines += ["", "Shown twice, examples:", "", *(f"- {example}" for example in result.shown_twice_examples)]
    return "\n".join(lines)


def write(result: SoakResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join(
        [
            "# NotifyHub chaos soak: latest run",
            INTRO.format(limit=result.recovery_limit),
            table(result),
            details(result),
        ]
    )
    path.write_text(text + "\n")
