"""The soak harness's own logic, without a stack: what it runs, and how it judges what it recorded.

A harness that miscounts is worse than none, so each figure's rule is pinned
here on hand-made records (the end-to-end runs are in test_soak.py).
"""

import asyncio
import math
import random
import time

import pytest

from bench.soak import chaos
from bench.soak.analysis import LatencySeries, find_losses, find_repeats, latency_samples
from bench.soak.chaos import StepRecord
from bench.soak.client import LIVE, REPLAYED, UNKNOWN
from bench.soak.database import DeliveryRow
from bench.soak.judge import BEFORE_CHAOS, Timeline
from bench.soak.options import DeliveryTimings, parse_options
from bench.soak.population import Population, SoakUser, assign_kinds, protocols_for
from bench.soak.processes import parse_procfile, shell_command
from bench.soak.publisher import HttpTally, Publish
from bench.soak.result import SoakResult, StepOutcome

PROCFILE = """\
web: python -m notifyhub.web
worker: celery --app notifyhub worker --loglevel ${LOG_LEVEL:-INFO} --concurrency ${CELERY_CONCURRENCY:-2}
# a comment, then a blank line

sweeper: celery --app notifyhub worker --queues sweep --concurrency 1
beat: celery --app notifyhub beat --schedule /tmp/schedule
"""


def test_every_procfile_line_runs_celery_through_the_fake_fcm_wrapper_and_execs():
    lines = parse_procfile(PROCFILE)

    assert [line.name for line in lines] == ["web", "worker", "sweeper", "beat"]
    assert shell_command(lines[0], python="/venv/bin/python") == "exec python -m notifyhub.web"
    assert shell_command(lines[1], python="/venv/bin/python") == (
        "exec /venv/bin/python -m tests.support.celery_with_fake_fcm --app notifyhub worker "
        "--loglevel ${LOG_LEVEL:-INFO} --concurrency ${CELERY_CONCURRENCY:-2}"
    )
    assert [(line.is_celery_worker, line.is_celery_beat) for line in lines] == [
        (False, False),
        (True, False),
        (True, False),
        (False, True),
    ]


def test_the_settle_bound_covers_every_websocket_retry_a_lease_a_sweep_and_a_dispatch_grace():
    timings = DeliveryTimings(
        ack_timeout=3, max_ws_attempts=3, sweep_interval=1, push_lease=15, dispatch_grace=5, margin=15
    )
    assert timings.settle_bound == 3 * 7 + 15 + 1 + 5 + 15
    assert timings.environment()["NOTIFY_MAX_WS_ATTEMPTS"] == "3"


def test_chaos_steps_are_spaced_after_the_baseline_and_selectable():
    options = parse_options(["--seconds", "360", "--baseline", "60"])
    assert options.step_times == [60, 110, 160, 210, 260, 310]
    assert parse_options(["--steps", "kill9,redis"]).steps == ("kill9", "redis")
    assert parse_options(["--steps", "none"]).step_times == []
    with pytest.raises(SystemExit):
        parse_options(["--steps", "meteor"])


def test_kinds_follow_the_mix_and_silent_and_flaky_clients_alternate_protocols():
    kinds = assign_kinds(100, {"native": 35, "signalr": 20, "silent": 10, "flaky": 20, "offline": 15}, random.Random(1))
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {
        "native": 35,
        "signalr": 20,
        "silent": 10,
        "flaky": 20,
        "offline": 15,
    }
    assert protocols_for(["flaky", "flaky", "offline", "native", "silent"]) == [
        "native",
        "signalr",
        None,
        "native",
        "native",
    ]


def population(*kinds: str) -> Population:
    protocols = protocols_for(list(kinds))
    users = [
        SoakUser(
            key=key,
            user_id=1000 + key,
            kind=kind,
            protocol=protocol,
            token="t",
            device_token=f"device-{key}" if kind in ("silent", "flaky", "offline") else None,
        )
        for key, (kind, protocol) in enumerate(zip(kinds, protocols, strict=True))
    ]
    return Population(users=users, departments={}, publisher_token="p")


def test_a_live_repeat_on_one_connection_is_shown_twice_but_replays_and_other_connections_are_not():
    people = population("native", "signalr", "silent")
    receipts = [
        (0, 1, 7, LIVE, 0.0, 1.0),
        (0, 1, 7, REPLAYED, 0.0, 1.1),  # impossible from the hub, and not "new" anyway
        (0, 2, 7, REPLAYED, 0.0, 2.0),  # a new connection's replay
        (0, 2, 7, LIVE, 0.0, 2.5),  # then live again on that connection: shown twice
        (1, 1, 8, UNKNOWN, 0.0, 1.0),
        (1, 1, 8, UNKNOWN, 0.0, 3.0),  # SignalR: any repeat on one connection
        (2, 1, 9, LIVE, 0.0, 1.0),
        (2, 1, 9, LIVE, 0.0, 4.0),  # to a client that never acks: a repeat all the same
    ]

    repeats = find_repeats(receipts, people)

    assert repeats.shown_twice == {"native": 2, "signalr": 1}


def test_losses_are_open_rows_missing_rows_and_settled_rows_that_reached_nobody():
    people = population("native", "offline", "native")
    publishes = [
        Publish(seq=1, target="user", target_id=0, recipient_keys=(0,), notification_id="n1"),
        Publish(seq=2, target="user", target_id=1, recipient_keys=(1,), notification_id="n2"),
        Publish(seq=3, target="department", target_id=5, recipient_keys=(0, 2), notification_id="n3"),
        Publish(seq=4, target="user", target_id=2, recipient_keys=(2,)),  # never accepted: nothing expected
    ]
    rows = [
        DeliveryRow(1, 1000, "n1", "acknowledged", "", True),
        DeliveryRow(2, 1001, "n2", "pushed", "", False),  # FCM accepted it: reached
        DeliveryRow(3, 1000, "n3", "failed", "no_devices", False),  # received on a socket: reached
        DeliveryRow(3, 1002, "n3", "sent", "", False),  # still open
    ]
    receipts = [(0, 1, 3, REPLAYED, 0.0, 5.0)]

    losses = find_losses(
        publishes=publishes, rows=rows, receipts=receipts, population=people, fcm_accepted={("device-1", "n2")}
    )
    assert (losses.open, losses.missing, losses.unreached) == ([(3, 2)], [], [])

    without_push = find_losses(publishes=publishes, rows=rows[:3], receipts=[], population=people, fcm_accepted=set())
    assert without_push.missing == [(3, 2)]
    assert without_push.unreached == [(2, 1), (3, 0)]


def test_latency_samples_take_the_first_receipt_and_count_a_missing_one_as_infinite():
    publishes = [
        Publish(seq=1, target="user", target_id=0, recipient_keys=(0,), sent_at=10.0, notification_id="a"),
        Publish(seq=2, target="user", target_id=0, recipient_keys=(0,), sent_at=11.0, notification_id="b"),
        Publish(seq=3, target="user", target_id=1, recipient_keys=(1,), sent_at=12.0, notification_id="c"),
        Publish(seq=4, target="department", target_id=9, recipient_keys=(0,), sent_at=13.0, notification_id="d"),
    ]
    receipts = [
        (0, 1, 1, LIVE, 10.0, 10.5),
        (0, 2, 1, REPLAYED, 10.0, 13.0),
        (1, 1, 3, LIVE, 12.0, 12.1),  # not a probe
        (0, 2, 4, LIVE, 13.0, 13.2),  # a department's fan-out: another kind of latency
    ]

    assert latency_samples(publishes, receipts, probe_keys={0}) == [(10.0, 0.5), (11.0, math.inf)]


def test_a_never_received_sample_makes_the_p99_infinite_not_undefined():
    series = LatencySeries([(t, 0.05) for t in range(98)] + [(98, math.inf), (99, math.inf)])
    assert series.p99(0, 100) == math.inf
    assert series.p99(0, 98) == pytest.approx(0.05)


def series_with_outage(*, outage_from: float, outage_to: float) -> LatencySeries:
    """10 samples a second from t=0 to 60: 50 ms, or 3 s while the outage lasts."""
    samples = [(t / 10, 3.0 if outage_from <= t / 10 < outage_to else 0.05) for t in range(600)]
    return LatencySeries(samples)


def test_recovery_is_when_the_window_p99_is_back_at_the_threshold_and_stays_there():
    series = series_with_outage(outage_from=20, outage_to=26)

    assert series.recovery(struck_at=20, horizon_end=60, threshold=0.05, window=2, hold=5) == pytest.approx(6)
    assert series.recovery(struck_at=10, horizon_end=19, threshold=0.05, window=2, hold=5) == 0
    assert series.recovery(struck_at=20, horizon_end=25, threshold=0.05, window=2, hold=5) is None


def test_a_short_spike_after_recovery_restarts_the_hold():
    samples = [(t / 10, 3.0 if 200 <= t < 260 or t == 290 else 0.05) for t in range(600)]
    series = LatencySeries(samples)

    # Back at 26 s, but the spike at 29 s breaks the 5 s hold: recovered from the window after it.
    assert series.recovery(struck_at=20, horizon_end=60, threshold=0.05, window=2, hold=5) == pytest.approx(9.25)


def test_the_window_threshold_is_the_highest_window_p99_before_the_first_step():
    series = LatencySeries([(t / 10, 0.05 + (0.1 if t == 55 else 0)) for t in range(100)])
    assert max(series.window_p99s(0, 10, 2)) > 0.05
    assert max(series.window_p99s(0, 10, 2)) == pytest.approx(series.p99(4, 6))


def result(**overrides) -> SoakResult:
    fields = {
        "meta": {},
        "published": 10,
        "publishes_replayed": 0,
        "publishes_failed": 0,
        "published_twice": 0,
        "deliveries": 20,
        "deliveries_by_state": {"acknowledged": 20},
        "lost_open": 0,
        "lost_missing": 0,
        "lost_unreached": 0,
        "lost_examples": [],
        "shown_twice": {},
        "shown_twice_examples": [],
        "server_errors": {"publish": 0},
        "http": {"publish": {"201": 10}},
        "closes": {},
        "closes_1011": 0,
        "connected_failed": {},
        "connected_failed_received": 0,
        "baseline_p99_ms": 40.0,
        "recovery_threshold_ms": 60.0,
        "latency_ms": {"p50": 10.0, "p99": 40.0, "max": 50.0},
        "publish_seconds": {"p50": 0.02, "p99": 0.1},
        "steps": [StepOutcome("kill9", "kill -9 web", 60, "", 4.0, 50, 2000.0)],
        "settled": True,
        "settle_seconds": 5.0,
        "settle_bound": 57.0,
        "recovery_limit": 30.0,
    }
    return SoakResult(**{**fields, **overrides})


def test_the_rule_passes_a_clean_run_and_names_every_broken_part():
    assert result().violations() == []

    broken = result(
        lost_open=1,
        shown_twice={"native": 2},
        connected_failed={"no_devices": 3},
        server_errors={"publish": 4},
        steps=[StepOutcome("redis", "", 60, "", None, 20, None), StepOutcome("pg", "", 80, "", 31.0, 50, 9.0)],
    ).violations()

    assert len(broken) == 6
    assert broken[0].startswith("1 lost")
    assert "redis: live delivery not back" in broken[4]
    assert "pg: live delivery back after 31.0 s" in broken[5]


def test_a_run_that_fell_behind_before_any_chaos_says_it_was_overloaded():
    assert not result().overloaded
    assert result(publish_seconds={"p50": 3.0, "p99": 40.0}).overloaded
    assert result(baseline_p99_ms=12_000.0).overloaded


def test_the_result_survives_its_json_file(tmp_path):
    original = result(shown_twice={"signalr": 1})
    path = tmp_path / "result.json"
    path.write_text(original.to_json())

    loaded = SoakResult.load(path)

    assert loaded == original
    assert loaded.violations() == ["1 shown twice as new on one connection"]


def test_the_http_tally_counts_5xx_per_endpoint():
    tally = HttpTally()
    for outcome in (201, 201, 500, 503, "ConnectError", 429):
        tally.count("publish", outcome)
    tally.count("devices", 201)

    assert tally.server_errors() == {"publish": 2, "devices": 0}


def test_harm_is_put_down_to_the_last_step_struck_before_it():
    steps = [StepRecord("redis", 10, struck_at=110.0), StepRecord("pg", 20, struck_at=120.0), StepRecord("beat", 30)]
    timeline = Timeline(steps)  # beat never struck (the run ended first): nothing is put down to it

    assert timeline.count([100.0, 110.0, 119.9, 125.0, 500.0]) == {BEFORE_CHAOS: 1, "redis": 2, "pg": 2}
    assert timeline.count([109.5, 119.5], lead=1.0) == {"redis": 1, "pg": 1}


def test_a_step_that_overruns_moves_the_next_one_and_publishing_goes_on_until_it_was_observed(monkeypatch):
    def slow_first_strike(stack, record):
        record.struck_at = time.time()
        time.sleep(0.3 if record.name == "sigterm" else 0)
        record.whole_at = time.time()

    monkeypatch.setattr(chaos, "strike", slow_first_strike)
    steps = [StepRecord("sigterm", 0.0), StepRecord("kill9", 0.1)]
    schedule = chaos.Schedule(publish_seconds=0.2)
    started = time.monotonic()

    asyncio.run(chaos.run_steps(None, steps, schedule=schedule, started=started, observe=0.2, progress=lambda _: None))
    last_whole = time.monotonic() - started

    assert steps[1].struck_at - steps[0].whole_at == pytest.approx(0.2, abs=0.05)  # not at 0.1 s as planned
    assert schedule.final
    assert schedule.publish_seconds == pytest.approx(last_whole + 0.2, abs=0.05)
