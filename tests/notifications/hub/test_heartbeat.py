"""The process's presence heartbeat (notifications/hub/heartbeat.py): one timer keeps every connection online."""

import asyncio
import json
import logging
import math
import time

import pytest
from django.contrib.auth import get_user_model
from websockets.asyncio.client import connect as ws_connect

from notifications import presence
from notifications.hub import heartbeat
from notifications.hub.heartbeat import TICKS_PER_HEARTBEAT, PresenceRefresher
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import NativeClient, access_token
from tests.support.hub_sessions import hub_session, opened
from tests.support.waiting import eventually, eventually_async
from workflow import services as workflow

QUICK_TTL, QUICK_HEARTBEAT = 1.5, 0.5
QUICK_PRESENCE = {"NOTIFY_PRESENCE_TTL": str(QUICK_TTL), "NOTIFY_PRESENCE_HEARTBEAT": str(QUICK_HEARTBEAT)}


@pytest.fixture(scope="module")
def quick_presence_server(start_server):
    """A daphne on the test Redis whose presence expires 1.5 s after the last refresh, refreshed every 0.5 s."""
    return start_server("quick-presence", env=QUICK_PRESENCE)


def members_with_a_future_score(redis_client, key: str) -> set[str]:
    return {member.decode() for member in redis_client.zrangebyscore(key, time.time(), "+inf")}


def samples(seconds: float, every: float = 0.1):
    """Yield every `every` seconds for `seconds` (presence must hold *throughout*: no event to wait for)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield
        time.sleep(every)  # a sampling period: what is tested holds at every sample, not at some event


@pytest.mark.django_db(transaction=True)
def test_an_idle_connection_stays_online_with_its_departments_and_rooms_and_is_gone_for_good_after_close(
    quick_presence_server, redis_client, requester, department, approvers
):
    document = workflow.document_create(requester=requester, department=department, title="Q3", approvers=approvers)
    client = NativeClient.connect(quick_presence_server, token=access_token(requester))
    client.start()
    assert client.request("subscribed", type="subscribe", document_id=document.pk)["type"] == "subscribed"
    (connection_id,) = members_with_a_future_score(redis_client, presence.presence_key(requester.pk))
    member = f"{requester.pk}:{connection_id}"
    keys_and_members = [
        (presence.presence_key(requester.pk), connection_id),
        (presence.department_key(department.pk), member),
        (presence.room_key(document.pk), member),
    ]

    missed = [
        (round(time.monotonic(), 2), key)
        for _ in samples(4 * QUICK_TTL)  # the client sends nothing: only the process's heartbeat keeps it live
        for key, expected in keys_and_members
        if expected not in members_with_a_future_score(redis_client, key)
    ]
    assert missed == []

    client.close()
    assert eventually(lambda: all(redis_client.zscore(key, value) is None for key, value in keys_and_members))
    resurrected = [
        key
        for _ in samples(3 * QUICK_HEARTBEAT)  # 60 ticks of the server's refresher
        for key, value in keys_and_members
        if redis_client.zscore(key, value) is not None
    ]
    assert resurrected == []


# --- One process, many connections -------------------------------------------------------------------------------


@pytest.fixture
def server_on_private_redis(private_redis, start_server):
    """A daphne with quick presence on a Redis of this test's own: its INFO counters count this server alone."""
    server = start_server("quick-presence-private-redis", env=QUICK_PRESENCE)
    yield server
    server.stop()


async def open_idle_connection(server, token: str):
    socket = await ws_connect(server.ws_url(), additional_headers={"Authorization": f"Bearer {token}"}, proxy=None)
    while json.loads(await socket.recv())["type"] != "replay_complete":
        pass
    return socket


def all_online(users) -> bool:
    return presence.live_connection_counts([user.pk for user in users]) == {user.pk: 1 for user in users}


def redis_info(redis_server) -> dict:
    with redis_server.client() as client:
        return {**client.info("stats"), **client.info("commandstats")}


@pytest.mark.django_db(transaction=True)
def test_many_connections_cost_a_round_trip_per_tick_not_one_per_connection(server_on_private_redis, private_redis):
    """200 idle connections: Redis hears from the server about once per tick (20 per heartbeat), not 200 times."""
    connections, window = 200, 4.0
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"idle{number}") for number in range(connections)])
    add_members(DepartmentFactory(), *users)
    tokens = [access_token(user) for user in users]

    async def idle_window() -> tuple[dict, dict, float, dict[int, int]]:
        sockets = await asyncio.gather(*(open_idle_connection(server_on_private_redis, token) for token in tokens))
        try:
            # Every connect's own refresh has landed: from now on only the process's ticks refresh.
            assert await eventually_async(lambda: asyncio.to_thread(all_online, users))
            before, started = await asyncio.to_thread(redis_info, private_redis), time.monotonic()
            await asyncio.sleep(window)  # the measurement window: Redis traffic per unit of idle time is under test
            after, elapsed = await asyncio.to_thread(redis_info, private_redis), time.monotonic() - started
            live = await asyncio.to_thread(presence.live_connection_counts, [user.pk for user in users])
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))
        return before, after, elapsed, live

    before, after, elapsed, live = asyncio.run(idle_window())

    # An idle server's other Redis traffic is per process: the router's check every heartbeat, the layer's receive.
    most_ticks = elapsed / (QUICK_HEARTBEAT / TICKS_PER_HEARTBEAT) + 1
    allowance = 10 * elapsed + 10
    per_connection_heartbeats = connections * elapsed / QUICK_HEARTBEAT  # what a timer per connection sends: 1,600
    assert most_ticks + allowance < per_connection_heartbeats / 4  # so the bound below tells the two apart
    round_trips = after["total_reads_processed"] - before["total_reads_processed"]  # the test's INFO included
    script_calls = after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"]
    assert round_trips <= most_ticks + allowance, (round_trips, most_ticks)
    # Scripts: one per tick, and the process's liveness key refreshed from its own thread (presence.ProcessLiveness).
    liveness_refreshes = elapsed / (presence.process_ttl() / presence.ProcessLiveness.TICKS_PER_TTL) + 1
    assert script_calls <= most_ticks + liveness_refreshes, (script_calls, most_ticks, liveness_refreshes)
    # The window is longer than the TTL: only the process's refreshes kept everyone online.
    assert live == {user.pk: 1 for user in users}


@pytest.mark.django_db(transaction=True)
def test_after_a_redis_outage_the_heartbeat_brings_presence_back_and_logged_it_once(
    server_on_private_redis, private_redis
):
    user = UserFactory()
    client = NativeClient.connect(server_on_private_redis, token=access_token(user))
    client.start()
    try:
        private_redis.stop()
        assert eventually(lambda: "presence refresh failed" in server_on_private_redis.log_text())
        time.sleep(1)  # a failure streak of many ticks (one every 25 ms) is under test; only the server counts them
        private_redis.start()  # a new, empty Redis: the presence the connection had is gone

        # The client sends nothing: only the refresher can put it back.
        assert eventually(lambda: presence.is_online(user.pk))
        # The tick that put it back logs once its write has landed: wait for the line, not just for the write.
        assert eventually(lambda: "presence refresh works again after" in server_on_private_redis.log_text())
        assert server_on_private_redis.log_text().count("presence refresh failed") == 1
    finally:
        client.close()


# --- The refresher on a real event loop, against the test Redis ----------------------------------------------------


@pytest.fixture
def quick_presence(settings, redis_client):
    settings.NOTIFY_PRESENCE_TTL = QUICK_TTL
    settings.NOTIFY_PRESENCE_HEARTBEAT = QUICK_HEARTBEAT
    return redis_client


@pytest.mark.parametrize("ending", ["close", "unsubscribe"])
def test_what_a_session_leaves_during_a_tick_in_flight_is_not_put_back_by_it(quick_presence, monkeypatch, ending):
    """The tick read the session's groups before it left them: its ZADD must not land after their ZREM."""
    session = hub_session(1, department_ids=(7,), rooms=(30,))
    member = f"1:{session.connection_id}"
    tick_sent, answer, tick_over = asyncio.Event(), asyncio.Event(), asyncio.Event()
    refresh = presence.connections_alive

    async def slow_refresh(connections, **options):
        if any(connection.connection_id == session.connection_id for connection in connections):
            tick_sent.set()
            await answer.wait()  # as if Redis were slow to run the tick: the session leaves meanwhile
            await refresh(connections, **options)
            tick_over.set()
        else:
            await refresh(connections, **options)

    def members_left() -> dict[str, bool]:
        return {
            "user": quick_presence.zscore(presence.presence_key(1), session.connection_id) is not None,
            "department": quick_presence.zscore(presence.department_key(7), member) is not None,
            "room": quick_presence.zscore(presence.room_key(30), member) is not None,
        }

    async def scenario() -> tuple[dict, dict]:
        await opened(session)
        monkeypatch.setattr(presence, "connections_alive", slow_refresh)
        await tick_sent.wait()
        leaving = asyncio.create_task(session.close() if ending == "close" else session.unsubscribe(30))
        await asyncio.sleep(0.2)  # a window in which a ZREM not held back would overtake the tick
        answer.set()
        await asyncio.gather(leaving, tick_over.wait())
        after_leaving = members_left()  # well within the TTL: a member the tick put back would still be there
        await asyncio.sleep(2 * QUICK_HEARTBEAT / TICKS_PER_HEARTBEAT)  # two ticks in which none may put it back
        return after_leaving, members_left()

    after_leaving, later = asyncio.run(scenario())

    still_open = ending == "unsubscribe"
    expected = {"user": still_open, "department": still_open, "room": False}
    assert (after_leaving, later) == (expected, expected)


def test_a_crowd_that_connected_at_once_is_refreshed_a_slice_per_tick(quick_presence, settings, monkeypatch):
    """No herd: a tick refreshes about 1/TICKS_PER_HEARTBEAT of the connections, and every one stays online."""
    settings.NOTIFY_PRESENCE_HEARTBEAT, settings.NOTIFY_PRESENCE_TTL = 1, 2
    crowd = [hub_session(user_id) for user_id in range(1, 201)]
    batch_sizes = []
    refresh = presence.connections_alive

    async def counted_refresh(connections, **options):
        connections = list(connections)
        batch_sizes.append(len(connections))
        await refresh(connections, **options)

    async def scenario() -> dict[int, int]:
        loop = asyncio.get_running_loop()
        await opened(*crowd)
        opened_at = loop.time()
        monkeypatch.setattr(presence, "connections_alive", counted_refresh)
        await eventually_async(lambda: sum(batch_sizes) >= 2 * 200)
        await asyncio.sleep(opened_at + 2.5 - loop.time())  # past the TTL, when only refreshes keep anyone online
        return await asyncio.to_thread(presence.live_connection_counts, range(1, 201))

    live = asyncio.run(scenario())

    assert len(live) == 200  # online past the TTL
    assert sum(batch_sizes) >= 2 * 200  # each refreshed twice at least
    # Refreshing each when it comes due would send all 200 in one or two ticks every heartbeat. (The largest
    # batch is not asserted on: a loaded machine may hold up a few ticks, and the next one catches up.)
    assert sorted(batch_sizes)[len(batch_sizes) // 2] <= 2 * math.ceil(200 / TICKS_PER_HEARTBEAT), batch_sizes


def test_a_tick_that_fails_is_retried_and_the_refresher_that_died_starts_again(quick_presence, monkeypatch, caplog):
    first, second = hub_session(1), hub_session(2)
    refresh = presence.connections_alive
    failures = {"refresh": 2, "tick": 1}
    died = asyncio.Event()

    async def failing_refresh(connections, **options):
        if failures["refresh"]:
            failures["refresh"] -= 1
            raise ConnectionError("Redis away")
        await refresh(connections, **options)

    real_tick = PresenceRefresher._tick

    async def tick_that_crashes_once(self, **kwargs):
        if failures["tick"] and not failures["refresh"]:
            failures["tick"] -= 1
            died.set()
            raise RuntimeError("a bug in the refresher")
        await real_tick(self, **kwargs)

    async def first_offline() -> bool:
        return await presence.live_connection_count(1) == 0

    async def both_online() -> bool:
        return await presence.live_connection_count(1) + await presence.live_connection_count(2) == 2

    async def scenario() -> tuple[int, int]:
        await opened(first)
        monkeypatch.setattr(presence, "connections_alive", failing_refresh)
        monkeypatch.setattr(PresenceRefresher, "_tick", tick_that_crashes_once)
        await died.wait()
        # Nobody refreshes the first session now: it goes offline when its TTL runs out.
        await eventually_async(first_offline)
        offline_meanwhile = await presence.live_connection_count(1)
        await opened(second)  # starts the refresher again, which puts the first session back
        await eventually_async(both_online)
        return offline_meanwhile, await presence.live_connection_count(1) + await presence.live_connection_count(2)

    with caplog.at_level(logging.WARNING, logger=heartbeat.__name__):
        offline_meanwhile, live = asyncio.run(scenario())

    assert (offline_meanwhile, live) == (0, 2)
    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("presence refresh failed; trying again every tick") == 1  # once per failure streak
    assert "presence refresh works again after 2 failed ticks" in messages
    assert "presence refresher stopped; starting it again" in messages
