"""The measured scenarios. Each runs against one started server with its clients connected.

Clients are numbered by population index `i` (user `i`; indexes below
`department_size` are the department's members); their connection key in the
client pool is `key_offset + i`, so two servers' clients can be connected at
once. Every scenario opens its own phase, so frames from earlier phases
(replays, late arrivals) never count.
"""

import asyncio
import itertools
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async

from bench.options import Options
from bench.stack import Server
from bench.stats import percentile
from bench.swarm import ClientPool, Collected

RECEIVE_TIMEOUT = 10.0  # seconds to wait for stragglers after the last publish
PUBLISH_IN_FLIGHT = 64  # latency scenario: open publish requests at most
KIB = 1024


@dataclass
class Outcome:
    metrics: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def merge(self, other: "Outcome") -> None:
        self.metrics.update(other.metrics)
        for name, values in other.samples.items():
            self.samples.setdefault(name, []).extend(values)
        self.notes.extend(other.notes)


@dataclass
class ServerRun:
    """One server, its connected clients and a publisher, for one round."""

    server: Server
    pool: ClientPool
    publisher: object
    options: Options
    status: Callable[[str], None]
    connect_url: Callable[[int], tuple[str, dict]]  # population index -> (url, headers)
    key_offset: int = 0
    round: int = 0
    connected: set[int] = field(default_factory=set)  # population indexes

    def phase(self, scenario: str) -> str:
        return f"{self.server.kind}.r{self.round}.{scenario}"

    def keys(self, indexes) -> list[int]:
        return [self.key_offset + index for index in indexes]


def _collected_notes(scenario: str, collected: Collected) -> list[str]:
    notes = []
    if collected.lost:
        notes.append(f"{scenario}: {collected.lost} connections closed by the server ({collected.lost_reasons})")
    return notes


# --- connections and memory -------------------------------------------------------------
async def settle(run: ServerRun, *, busy_share: float = 0.15, timeout: float = 20.0) -> None:
    """Wait until the server is idle (e.g. done with a wave of disconnects) before measuring."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        before, started = run.server.cpu_seconds(), loop.time()
        await asyncio.sleep(0.5)
        if (run.server.cpu_seconds() - before) / (loop.time() - started) < busy_share:
            return
        run.status("waiting for the server to go idle")


async def open_clients(run: ServerRun, indexes: range) -> float:
    """Connect the clients `indexes`; returns connections per second. Any failure stops the run."""
    wanted = [index for index in indexes if index not in run.connected]
    if not wanted:
        return float("nan")
    conns = [(run.key_offset + index, *run.connect_url(index)) for index in wanted]
    result = await run.pool.connect(conns, concurrency=run.options.connect_concurrency)
    if result.failed:
        raise RuntimeError(
            f"{run.server.kind}: {result.failed} of {len(conns)} connections failed, e.g. {result.errors}\n"
            f"{run.server.log_tail()}"
        )
    run.connected.update(wanted)
    return len(conns) / result.seconds


async def close_clients(run: ServerRun, indexes) -> None:
    indexes = sorted(set(indexes) & run.connected)
    if indexes:
        await run.pool.close(run.keys(indexes))
        run.connected.difference_update(indexes)


async def ramp_up(run: ServerRun, *, measure_memory: bool) -> Outcome:
    """Connect the scenario clients, reading RSS at each memory point on the way (issue scenario 4).

    Points above `--clients` are opened only when memory is measured, and closed again
    afterwards, so the other scenarios always run with exactly `--clients` connections.
    """
    outcome = Outcome()
    options = run.options
    await asyncio.sleep(0.5)
    baseline = run.server.rss_bytes()
    points = [point for point in options.memory_points if point <= options.clients or measure_memory]
    rates = []
    for point in points:
        run.status(f"connecting {point} clients")
        rates.append(await open_clients(run, range(point)))
        await asyncio.sleep(1.0)  # let per-connection tasks settle before reading RSS
        if "memory" in options.scenarios:
            outcome.metrics[f"rss_per_conn_{point}"] = (run.server.rss_bytes() - baseline) / point / KIB
    if options.clients not in points:
        run.status(f"connecting {options.clients} clients")
        rates.append(await open_clients(run, range(options.clients)))
    extra = [index for index in run.connected if options.clients <= index < options.users]
    if extra:
        run.status(f"closing {len(extra)} memory-only clients")
        await close_clients(run, extra)
    await settle(run)
    finite = [rate for rate in rates if rate == rate]
    if finite:
        outcome.metrics["connect_rate"] = finite[0]
    return outcome


# --- 1. single-recipient latency ---------------------------------------------------------
async def latency(run: ServerRun) -> Outcome:
    """Publish to one random connected user at a fixed rate for a fixed time; every client acks what it gets.

    The publisher keeps at most `PUBLISH_IN_FLIGHT` requests open, as an HTTP client's
    connection pool would: when the server cannot keep up, the achieved rate drops
    below `--rate` and the latency shows the queueing, without an ever-growing backlog.
    """
    options = run.options
    phase = run.phase("latency")
    await run.pool.phase(phase, ack="now")
    chooser = random.Random(run.round)  # a reproducible spread of recipients
    loop = asyncio.get_running_loop()
    in_flight = asyncio.Semaphore(PUBLISH_IN_FLIGHT)
    errors: list[str] = []
    tasks = []

    async def publish(seq: int, index: int) -> None:
        try:
            await run.publisher.to_user(index=index, event="bench.latency", phase=phase, seq=seq)
        except Exception as error:
            errors.append(str(error))
        finally:
            in_flight.release()

    start = loop.time()
    end = start + options.latency_seconds
    for seq in itertools.count():
        due = start + seq / options.rate
        if due >= end:
            break
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        await in_flight.acquire()
        if loop.time() >= end:
            in_flight.release()
            break
        tasks.append(asyncio.create_task(publish(seq, chooser.randrange(options.clients))))
        if seq % 50 == 0:
            run.status(f"latency: {seq} published, {run.pool.received} received")
    await asyncio.gather(*tasks)
    total = len(tasks)
    # Publishes completed per second: below --rate when the server cannot keep up.
    achieved = total / max(loop.time() - start, 1e-9)
    await run.pool.wait_received(total - len(errors), timeout=RECEIVE_TIMEOUT)
    collected = await run.pool.collect()

    latencies = [(received - sent) * 1000 for _, _, sent, received in collected.receipts]
    outcome = Outcome(samples={"latency": latencies}, notes=_collected_notes("latency", collected))
    outcome.metrics.update(
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        latency_p99=percentile(latencies, 99),
        latency_rate=achieved,
    )
    seqs = Counter(seq for _, seq, _, _ in collected.receipts)
    missing = total - len(errors) - len(seqs)
    duplicated = sum(count - 1 for count in seqs.values())
    if errors:
        outcome.notes.append(f"latency: {len(errors)} publishes failed, e.g. {errors[0]}")
    if missing or duplicated:
        outcome.notes.append(f"latency: {missing} notifications never arrived, {duplicated} arrived twice")
    return outcome


# --- 2. department fan-out ------------------------------------------------------------------
def _fanout_check(receipts, *, members: range, sends: int) -> tuple[list[float], list[float], int]:
    """(time to last member per send in ms, every member's latency in ms, exactly-once violations)."""
    keys_by_seq: dict[int, Counter] = defaultdict(Counter)
    last: dict[int, float] = {}
    every = []
    for key, seq, sent, received in receipts:
        keys_by_seq[seq][key] += 1
        latency_ms = (received - sent) * 1000
        every.append(latency_ms)
        last[seq] = max(last.get(seq, 0.0), latency_ms)
    violations = 0
    for seq in range(sends):
        counts = keys_by_seq.get(seq, Counter())
        violations += sum(1 for key in members if counts.get(key, 0) != 1)  # missing or duplicated
        violations += sum(count for key, count in counts.items() if key not in members)  # not a member
    return [last[seq] for seq in sorted(last)], every, violations


async def fanout(run: ServerRun) -> Outcome:
    """One notification to the department, again and again: time until the last member has it."""
    options = run.options
    phase = run.phase("fanout")
    members = options.department_size
    await run.pool.phase(phase, ack="none")
    timeouts = sent = 0
    for seq in range(options.fanout_sends):
        run.status(f"fan-out: send {seq + 1}/{options.fanout_sends}")
        await run.publisher.to_department(event="bench.fanout", phase=phase, seq=seq)
        sent += 1
        if not await run.pool.wait_received((seq + 1) * members, timeout=RECEIVE_TIMEOUT):
            timeouts += 1
            break  # the rest would only wait as long again; the violations below say what went missing
        await asyncio.sleep(0.05)  # let the server go idle between sends
    collected = await run.pool.collect()
    to_last, every, violations = _fanout_check(
        collected.receipts, members=range(run.key_offset, run.key_offset + members), sends=sent
    )
    outcome = Outcome(samples={"fanout": every}, notes=_collected_notes("fanout", collected))
    outcome.metrics.update(
        fanout_p50=percentile(to_last, 50),
        fanout_p99=percentile(to_last, 99),
        fanout_violations=violations,
    )
    if violations or timeouts:
        outcome.notes.append(
            f"fan-out: {violations} member deliveries missing, duplicated or misaddressed in {sent} sends"
            + (" (stopped: a send was still incomplete after the timeout)" if timeouts else "")
        )
    return outcome


# --- 3. saturation throughput -------------------------------------------------------------------
async def throughput(run: ServerRun) -> Outcome:
    """Department sends back to back (at most `--throughput-window` undelivered) for a fixed time."""
    options = run.options
    phase = run.phase("throughput")
    members = options.department_size
    await run.pool.phase(phase, ack="none")
    loop = asyncio.get_running_loop()
    published = 0
    cpu_before = run.server.cpu_seconds()
    end = loop.time() + options.throughput_seconds

    async def publisher_loop() -> None:
        nonlocal published
        while loop.time() < end:
            if published * members - run.pool.received >= options.throughput_window * members:
                await asyncio.sleep(0.002)
                continue
            seq = published
            published += 1
            await run.publisher.to_department(event="bench.throughput", phase=phase, seq=seq)
            run.status(f"throughput: {published} sends, {run.pool.received} deliveries")

    await asyncio.gather(*(publisher_loop() for _ in range(options.publish_concurrency)))
    drained = await run.pool.wait_received(published * members, timeout=RECEIVE_TIMEOUT)
    cpu = run.server.cpu_seconds() - cpu_before
    collected = await run.pool.collect()
    receipts = collected.receipts
    outcome = Outcome(notes=_collected_notes("throughput", collected))
    if not receipts:
        outcome.notes.append("throughput: nothing arrived")
        return outcome
    first_sent = min(sent for _, _, sent, _ in receipts)
    last_received = max(received for _, _, _, received in receipts)
    outcome.metrics.update(
        throughput=len(receipts) / (last_received - first_sent),
        cpu_per_1000=cpu / len(receipts) * 1000,
    )
    if not drained:
        outcome.notes.append(f"throughput: {published * members - len(receipts)} deliveries missing after drain")
    return outcome


# --- 5. acknowledgements ---------------------------------------------------------------------------
async def acks(run: ServerRun, *, acknowledged_count: Callable[[list[str]], int]) -> Outcome:
    """Clients hold the acks of several department sends, then send them all: acks/s until all are persisted.

    The driver polls the database every 20 ms for the count, by the sends' notification ids (an index lookup:
    the phase's JSON stamp made PostgreSQL read every earlier phase's notifications, on the cores the hub runs on).
    """
    options = run.options
    phase = run.phase("acks")
    members = options.department_size
    await run.pool.phase(phase, ack="hold")
    notification_ids = []
    for seq in range(options.ack_sends):
        run.status(f"acks: preparing send {seq + 1}/{options.ack_sends}")
        notification_ids.append(await run.publisher.to_department(event="bench.acks", phase=phase, seq=seq))
    expected = options.ack_sends * members
    await run.pool.wait_received(expected, timeout=RECEIVE_TIMEOUT)
    count = sync_to_async(acknowledged_count, thread_sensitive=True)
    run.status(f"acks: sending {expected} acks")
    sent, first, _ = await run.pool.ack_held()
    if not sent:
        return Outcome(notes=[f"acks: none of the {expected} notifications arrived, so no acks were sent"])
    persisted, done = 0, time.time()
    deadline = time.time() + RECEIVE_TIMEOUT * 2
    while time.time() < deadline:
        persisted = await count(notification_ids)
        done = time.time()
        run.status(f"acks: {persisted}/{sent} persisted")
        if persisted >= sent:
            break
        await asyncio.sleep(0.02)
    outcome = Outcome()
    outcome.metrics["acks_per_s"] = persisted / (done - first)
    if persisted < sent or sent < expected:
        outcome.notes.append(f"acks: {sent} of {expected} held acks sent, {persisted} persisted")
    return outcome


# --- 6. batch publish --------------------------------------------------------------------------------
async def _publish_back_to_back(run: ServerRun, publish_one, *, label: str) -> tuple[int, float, list[str]]:
    """`--publish-concurrency` publishers calling `publish_one(seq)` (which publishes and returns how many) one
    after the other for `--batch-seconds`: (notifications published, seconds taken, errors)."""
    options = run.options
    loop = asyncio.get_running_loop()
    published, errors = 0, []
    seqs = itertools.count()
    start = loop.time()
    end = start + options.batch_seconds

    async def publisher_loop() -> None:
        nonlocal published
        while loop.time() < end and not errors:
            try:
                count = await publish_one(next(seqs))
            except Exception as error:
                errors.append(str(error))
            else:
                published += count  # not `published += await ...`: that reads `published` before the wait
            run.status(f"batch: {label}: {published} published, {run.pool.received} received")

    await asyncio.gather(*(publisher_loop() for _ in range(options.publish_concurrency)))
    return published, loop.time() - start, errors


async def batch(run: ServerRun) -> Outcome:
    """Single-recipient notifications to random connected users, published back to back for a few seconds, first
    one per request, then `--batch-size` per batch request: notifications published per second each way, and the
    batched ones' time from the publisher's call to the client's socket. Clients ack what they get."""
    options = run.options
    chooser = random.Random(run.round)
    outcome = Outcome()

    single_phase = run.phase("batch-single")
    await run.pool.phase(single_phase, ack="now")

    async def publish_single(seq: int) -> int:
        index = chooser.randrange(options.clients)
        await run.publisher.to_user(index=index, event="bench.single", phase=single_phase, seq=seq)
        return 1

    single_published, single_seconds, single_errors = await _publish_back_to_back(
        run, publish_single, label="one per request"
    )
    await run.pool.wait_received(single_published, timeout=RECEIVE_TIMEOUT)
    outcome.notes += _collected_notes("batch (single)", await run.pool.collect())

    phase = run.phase("batch")
    await run.pool.phase(phase, ack="now")

    async def publish_batch(batch_number: int) -> int:
        indexes = [chooser.randrange(options.clients) for _ in range(options.batch_size)]
        first_seq = batch_number * options.batch_size
        return len(await run.publisher.to_users(indexes=indexes, event="bench.batch", phase=phase, first_seq=first_seq))

    published, seconds, errors = await _publish_back_to_back(run, publish_batch, label="batches")
    await run.pool.wait_received(published, timeout=RECEIVE_TIMEOUT)
    collected = await run.pool.collect()
    latencies = [(received - sent) * 1000 for _, _, sent, received in collected.receipts]
    outcome.samples["batch"] = latencies
    outcome.notes += _collected_notes("batch", collected)
    outcome.metrics.update(
        batch_single_rate=single_published / max(single_seconds, 1e-9),
        batch_rate=published / max(seconds, 1e-9),
        batch_p50=percentile(latencies, 50),
        batch_p99=percentile(latencies, 99),
    )
    for label, failed in (("single publishes", single_errors), ("batches", errors)):
        if failed:
            outcome.notes.append(f"batch: {len(failed)} {label} failed, e.g. {failed[0]}")
    seqs = Counter(seq for _, seq, _, _ in collected.receipts)
    missing, duplicated = published - len(seqs), sum(count - 1 for count in seqs.values())
    if missing or duplicated:
        outcome.notes.append(f"batch: {missing} notifications never arrived, {duplicated} arrived twice")
    return outcome


# --- 7. reconnect storm -----------------------------------------------------------------------------
STORM_TIMEOUT = 60.0  # seconds after the restart for every client to be back, at most
MISSED_RECIPIENTS = 10  # recipients of each notification published while the server is down
LIVE_SEQ_BASE = 1_000_000  # the live notifications' seq numbers start here; the missed ones' at 0
BACK_POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class StormParts:
    """What the storm needs from the driver besides the run: the database, and publishers around the restart."""

    reset_notifications: Callable[[], Awaitable[None]]  # empty the notification tables: nothing else to replay
    offline_publisher: object  # publishes while the web process is down (in-process; has `one_to_users`)
    reopen_publisher: Callable[[], Awaitable[object]]  # the run's publisher again, for the restarted process


def _exactly_once(receipts, expected: dict[int, set[int]]) -> tuple[int, int]:
    """(pairs (seq, key) expected but missing, copies beyond the first plus misaddressed ones) among `receipts`."""
    counts = Counter((seq, key) for key, seq, _, _ in receipts if seq in expected)
    lost = sum(1 for seq, keys in expected.items() for key in keys if not counts.get((seq, key)))
    duplicated = sum(count - 1 for count in counts.values() if count > 1)
    duplicated += sum(count for (seq, key), count in counts.items() if key not in expected[seq])
    return lost, duplicated


def _busiest_second(times: list[float]) -> int:
    """The most of `times` (seconds) within any one-second window."""
    ordered, start, best = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def reconnect(run: ServerRun, *, parts: StormParts) -> Outcome:
    """Restart the web process under `--storm-clients` connections; every client reconnects with the JS client's
    backoff and gets what was published while the server was down, exactly once; live notifications go on
    meanwhile (`--storm-rate`) to the clients already back. Hub only; it leaves `--clients` connections open."""
    options = run.options
    phase = run.phase("reconnect")
    run.status(f"reconnect: connecting {options.storm_clients} clients")
    await open_clients(run, range(options.storm_clients))
    await parts.reset_notifications()
    await settle(run)
    storm = sorted(run.connected)
    chooser = random.Random(run.round)
    missed = {
        seq: set(chooser.sample(range(options.storm_clients), MISSED_RECIPIENTS)) for seq in range(options.storm_missed)
    }
    await run.pool.phase(phase, ack="now", reconnect=True)

    run.status("reconnect: restarting the web process")
    terminated_at = time.time()
    await asyncio.to_thread(run.server.stop)
    exited_at = time.time()

    def start_again() -> float:
        run.server.start(port=run.server.port)
        return time.time()

    # Published while the new process starts (it takes a second or two): their rows wait, pending, for the replay.
    starting = asyncio.create_task(asyncio.to_thread(start_again))
    for seq, indexes in missed.items():
        await parts.offline_publisher.one_to_users(
            indexes=sorted(indexes), event="bench.reconnect.missed", phase=phase, seq=seq
        )
    published_missed_at = time.time()
    listening_at = await starting
    run.publisher = await parts.reopen_publisher()

    back: list[int] = []
    live: dict[int, set[int]] = {}  # seq -> its one recipient
    live_seqs = itertools.count(LIVE_SEQ_BASE)
    errors: list[str] = []
    tasks: list[asyncio.Task] = []
    in_flight = asyncio.Semaphore(PUBLISH_IN_FLIGHT)

    async def publish_live(seq: int, index: int) -> None:
        try:
            await run.publisher.to_user(index=index, event="bench.reconnect.live", phase=phase, seq=seq)
        except Exception as error:  # e.g. refused (503) while the hub is far behind: it never existed
            errors.append(f"{type(error).__name__}: {error}"[:300])
            del live[seq]
        finally:
            in_flight.release()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + STORM_TIMEOUT
    next_poll = next_publish = loop.time()
    away = len(storm)
    while away and loop.time() < deadline:
        now = loop.time()
        if now >= next_poll:
            newly_back, away = await run.pool.back()
            back.extend(key - run.key_offset for key in newly_back)
            next_poll = now + BACK_POLL_INTERVAL
            run.status(f"reconnect: {len(storm) - away}/{len(storm)} back")
        if back and now >= next_publish and not in_flight.locked():
            await in_flight.acquire()
            seq = next(live_seqs)
            live[seq] = {chooser.choice(back)}
            tasks.append(asyncio.create_task(publish_live(seq, next(iter(live[seq])))))
            next_publish += 1 / options.storm_rate
        await asyncio.sleep(max(0.0, min(next_poll, next_publish) - loop.time()))
    await asyncio.gather(*tasks)
    expected = sum(len(keys) for keys in missed.values()) + len(live)
    await run.pool.wait_received(expected, timeout=RECEIVE_TIMEOUT)
    collected = await run.pool.collect()
    await run.pool.phase(run.phase("after-reconnect"))  # no more reconnecting on their own

    offset = run.key_offset
    keyed_missed = {seq: {offset + index for index in indexes} for seq, indexes in missed.items()}
    keyed_live = {seq: {offset + index for index in indexes} for seq, indexes in live.items()}
    missed_lost, missed_duplicated = _exactly_once(collected.receipts, keyed_missed)
    live_lost, live_duplicated = _exactly_once(collected.receipts, keyed_live)
    storm_keys = set(run.keys(storm))
    records = [record for record in collected.reconnects if record[0] in storm_keys]
    hellos = [hello_at for _, _, _, hello_at, _ in records if hello_at is not None]
    backs = [back_at for _, _, _, _, back_at in records if back_at is not None]
    latencies = [(received - sent) * 1000 for _, seq, sent, received in collected.receipts if seq >= LIVE_SEQ_BASE]
    outcome = Outcome(samples={"storm_live": latencies}, notes=_collected_notes("reconnect", collected))
    outcome.metrics.update(
        storm_outage_s=listening_at - terminated_at,
        storm_lost=missed_lost + live_lost,
        storm_duplicated=missed_duplicated + live_duplicated,
        storm_live_p99=percentile(latencies, 99),
        storm_live_max=max(latencies, default=math.nan),
    )
    if len(backs) == len(storm):
        outcome.metrics.update(
            storm_back_s=max(backs) - listening_at,
            storm_back_after_sigterm_s=max(backs) - terminated_at,
            storm_connect_rate=len(hellos) / max(max(hellos) - listening_at, 1e-9),
            storm_connect_peak=_busiest_second(hellos),
        )
    else:
        outcome.notes.append(f"reconnect: {len(storm) - len(backs)} of {len(storm)} clients not back after the timeout")
    if published_missed_at > listening_at:
        outcome.notes.append("reconnect: publishing for while it was down ended after the new process listened")
    if errors:
        outcome.notes.append(f"reconnect: {len(errors)} live publishes failed, e.g. {errors[0]}")
    if missed_lost or missed_duplicated or live_lost or live_duplicated:
        outcome.notes.append(
            f"reconnect: missed while down {missed_lost} lost, {missed_duplicated} duplicated; "
            f"live {live_lost} lost, {live_duplicated} duplicated"
        )
    attempts = sorted(tries for _, _, tries, _, _ in records)
    outcome.notes.append(
        f"reconnect: {len(storm)} clients, SIGTERM to exit {exited_at - terminated_at:.1f} s, exit to listening "
        f"{listening_at - exited_at:.1f} s, tries per client median {percentile(attempts, 50):.0f} max "
        f"{attempts[-1] if attempts else 0}, {len(live)} live notifications ({len(errors)} refused or failed)"
    )
    extra = [index for index in run.connected if options.clients <= index < options.users]
    await close_clients(run, extra)
    await settle(run)
    return outcome
