"""Keeps `make bench` from rotting: its modules import, and its moving parts work end to end on the bare server.

No figures are measured or asserted here (speed belongs in `make bench`).
"""

import asyncio
import importlib
import pkgutil
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings

import bench
from bench.options import parse_options
from bench.publishers import BarePublisher
from bench.report import Results, markdown
from bench.scenarios import Outcome, _fanout_check, _publish_back_to_back
from bench.stack import Server
from bench.stats import percentile
from bench.swarm import ClientPool

DEPARTMENT_ID = 7


def test_every_bench_module_imports():
    names = [module.name for module in pkgutil.iter_modules(bench.__path__) if module.name != "__main__"]
    assert {"run", "clients", "bare_server", "scenarios", "report"} <= set(names)
    for name in names:
        importlib.import_module(f"bench.{name}")


def test_bare_server_delivers_to_users_and_departments_exactly_once(tmp_path):
    """The bare server, a client swarm process and the Redis publisher, wired as `make bench` wires them."""
    prefix = f"bench.test.{uuid.uuid4().hex}."
    server = Server(kind="bare", env=None, log_dir=tmp_path, redis_url=settings.REDIS_URL, channel_prefix=prefix)
    server.start(timeout=30)
    try:
        collected = asyncio.run(_deliver_through_bare_server(server.port, prefix))
    finally:
        server.stop()

    by_key = sorted((key, seq) for key, seq, _, _ in collected.receipts)
    # Keys 0 and 1 are department members; key 2 is not. Seq 0 went to user 2 only, seq 1 to the department.
    assert by_key == [(0, 1), (1, 1), (2, 0)]
    assert all(received >= sent for _, _, sent, received in collected.receipts)
    assert collected.lost == 0
    assert collected.acks_sent == 3


async def _deliver_through_bare_server(port: int, prefix: str):
    user_ids = [101, 102, 103]
    pool = ClientPool(processes=1)
    await pool.start()
    publisher = BarePublisher(
        redis_url=settings.REDIS_URL, user_ids=user_ids, department_id=DEPARTMENT_ID, prefix=prefix
    )
    try:
        conns = []
        for key, user_id in enumerate(user_ids):
            departments = f"&departments={DEPARTMENT_ID}" if key < 2 else ""
            conns.append((key, f"ws://127.0.0.1:{port}/?user={user_id}{departments}", {}))
        connected = await pool.connect(conns)
        assert (connected.connected, connected.failed) == (3, 0)

        await pool.phase("smoke", ack="now")
        await publisher.to_user(index=2, event="bench.smoke", phase="smoke", seq=0)
        await publisher.to_department(event="bench.smoke", phase="smoke", seq=1)
        assert await pool.wait_received(3, timeout=10)
        await asyncio.sleep(0.2)  # a duplicate, if any, would arrive now
        return await pool.collect()
    finally:
        await publisher.close()
        await pool.stop()


def test_fanout_check_counts_missing_duplicate_and_misaddressed_deliveries():
    receipts = [
        (0, 0, 1.0, 1.010),
        (1, 0, 1.0, 1.020),
        (0, 1, 2.0, 2.005),
        (0, 1, 2.0, 2.006),  # duplicate of member 0; member 1 never got seq 1
        (5, 1, 2.0, 2.007),  # not a member
    ]
    to_last, every, violations = _fanout_check(receipts, members=range(2), sends=2)
    assert to_last == pytest.approx([20.0, 7.0])
    assert len(every) == 5
    assert violations == 3


def test_percentile_interpolates_between_ranks():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 99) == 99
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_report_shows_ratios_to_the_bare_baseline():
    options = parse_options(["--servers", "bare,uvicorn", "--rounds", "2"])
    results = Results(servers=options.servers)
    for round_number, (bare_p99, hub_p99) in enumerate([(10.0, 30.0), (20.0, 50.0)], start=1):
        bare, hub = Outcome(metrics={"fanout_p99": bare_p99}), Outcome(metrics={"fanout_p99": hub_p99}, notes=["slow"])
        results.add("bare", f"round {round_number}", bare)
        results.add("uvicorn", f"round {round_number}", hub)
        results.pair("uvicorn", hub, bare)
    text = markdown(results, options, meta={"rounds": 2})
    row = next(line for line in text.splitlines() if "time to last member p99" in line and "|" in line)
    assert "15.0 [10.0–20.0]" in row
    assert "40.0 [30.0–50.0]" in row
    assert "2.75×" in row  # the median of the paired ratios 3.0 and 2.5
    assert "MISSED: 40.0 (2.75×)" in text
    assert "uvicorn, round 2: slow" in text


def test_quick_preset_leaves_flags_given_on_the_command_line(monkeypatch):
    """`python -m bench --quick --rounds 3` (no argv passed: the command line is read): the explicit flag wins."""
    monkeypatch.setattr("sys.argv", ["bench", "--quick", "--rounds", "3"])
    options = parse_options()
    assert (options.rounds, options.memory_points) == (3, (1_000,))


def test_quick_preset_shortens_the_run_but_explicit_flags_win():
    quick = parse_options(["--quick", "--fanout-sends", "9"])
    assert (quick.rounds, quick.memory_points, quick.fanout_sends) == (1, (1_000,), 9)
    assert parse_options([]).memory_points == (1_000, 5_000)


def test_publishing_back_to_back_counts_every_concurrent_publishers_notifications():
    options = parse_options(["--quick", "--publish-concurrency", "3", "--batch-seconds", "0.2"])
    run = SimpleNamespace(options=options, status=lambda _: None, pool=SimpleNamespace(received=0))
    calls = []

    async def publish_batch_of_ten(seq: int) -> int:
        calls.append(seq)
        await asyncio.sleep(0.01)  # the three publishers' requests overlap
        return 10

    published, seconds, errors = asyncio.run(_publish_back_to_back(run, publish_batch_of_ten, label="test"))

    assert errors == [] and seconds >= 0.2
    assert published == 10 * len(calls) and sorted(calls) == list(range(len(calls)))


def test_server_cpu_and_memory_include_its_worker_processes(tmp_path):
    """uvicorn with WEB_CONCURRENCY > 1 serves from spawned workers: the parent alone would read as idle."""
    import subprocess
    import sys
    import time

    from bench import stack

    busy_child = "\n".join(
        ["import time", "start = time.process_time()", "while time.process_time() - start < 0.5: pass", "time.sleep(9)"]
    )
    parent_code = "\n".join(
        ["import subprocess, sys, time", f"subprocess.Popen([sys.executable, '-c', {busy_child!r}])", "time.sleep(60)"]
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    server = Server("bare", {}, tmp_path, redis_url="")
    server.process = parent
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.cpu_seconds() < 0.5:
            time.sleep(0.05)
        tree = stack.process_tree(parent.pid)

        assert len(tree) == 2 and tree[0] == parent.pid
        assert server.cpu_seconds() >= 0.5 > stack.cpu_seconds(parent.pid) + 0.2
        assert server.rss_bytes() > stack.rss_bytes(parent.pid)
    finally:
        for pid in stack.process_tree(parent.pid)[1:]:
            subprocess.run(["kill", str(pid)], check=False)
        parent.kill()
        parent.wait()


def test_clients_wait_as_the_js_clients_reconnect_policy_does():
    """Full jitter: random(0, min(30 s, 1 s * 2^attempt)), as ReconnectPolicy in clients/js/src/notifyhub.js."""
    from bench.clients import reconnect_delay

    assert [reconnect_delay(attempt, lambda: 0.999999) for attempt in range(7)] == pytest.approx(
        [1, 2, 4, 8, 16, 30, 30], rel=1e-5
    )
    assert reconnect_delay(3, lambda: 0.5) == 4
    assert reconnect_delay(9, lambda: 0.0) == 0


def test_storm_checks_count_lost_duplicated_and_misaddressed_deliveries_and_the_busiest_second():
    from bench.scenarios import _busiest_second, _exactly_once

    receipts = [(10, 0, 1.0, 2.0), (10, 0, 1.0, 2.1), (11, 1, 1.0, 2.0), (12, 1, 1.0, 2.0), (13, 9, 1.0, 2.0)]
    # seq 0 to 10 (arrived twice) and 11 (never); seq 1 to 11 (arrived) and 12 (arrived, but was not meant to)
    assert _exactly_once(receipts, {0: {10, 11}, 1: {11}}) == (1, 2)
    assert _busiest_second([0.0, 0.2, 0.9, 1.1, 1.95, 3.0]) == 3  # 0.0-0.9 or 0.2-1.1
    assert _busiest_second([]) == 0


def test_a_server_restarts_on_its_port_and_the_swarm_reconnects_by_itself(tmp_path):
    """What the reconnect storm does, on the bare server: the clients it drops come back with their backoff."""
    prefix = f"bench.test.{uuid.uuid4().hex}."
    server = Server(kind="bare", env=None, log_dir=tmp_path, redis_url=settings.REDIS_URL, channel_prefix=prefix)
    server.start(timeout=30)
    try:
        port, pid = server.port, server.pid
        collected = asyncio.run(_reconnect_through_a_restart(server, prefix))
        assert (server.port, server.pid != pid) == (port, True)
    finally:
        server.stop()

    assert sorted(key for key, *_ in collected.reconnects) == [0, 1, 2]
    assert all(tries >= 1 and hello_at >= dropped_at for _, dropped_at, tries, hello_at, _ in collected.reconnects)
    assert collected.lost == 0
    assert [(key, seq) for key, seq, _, _ in collected.receipts] == [(2, 0)]  # the reconnected client hears again


async def _reconnect_through_a_restart(server: Server, prefix: str):
    user_ids = [201, 202, 203]
    pool = ClientPool(processes=1)
    await pool.start()
    publisher = BarePublisher(
        redis_url=settings.REDIS_URL, user_ids=user_ids, department_id=DEPARTMENT_ID, prefix=prefix
    )
    try:
        url = f"ws://127.0.0.1:{server.port}/?user="
        connected = await pool.connect([(key, f"{url}{user_id}", {}) for key, user_id in enumerate(user_ids)])
        assert (connected.connected, connected.failed) == (3, 0)
        await pool.phase("storm", ack="now", reconnect=True)
        await asyncio.to_thread(server.restart, timeout=30)
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            collected = await pool.collect()
            if len(collected.reconnects) == 3 and all(record[3] for record in collected.reconnects):
                break
            await asyncio.sleep(0.1)
        await publisher.to_user(index=2, event="bench.smoke", phase="storm", seq=0)
        assert await pool.wait_received(1, timeout=10)
        return await pool.collect()
    finally:
        await publisher.close()
        await pool.stop()
