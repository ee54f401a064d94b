"""Closing sessions (`sessions_close` in notifications/hub/session.py): one on disconnect, all at once at shutdown.

Either way a closed session leaves presence, its groups and the refresher, and its user's "last seen" is recorded
once nobody of theirs is left online; at shutdown thousands close in a few Redis round trips, not a few each.
"""

import asyncio

from channels.layers import get_channel_layer

from notifications import layer, presence
from notifications.hub.heartbeat import presence_refresher
from notifications.hub.router import hub_router
from notifications.hub.session import sessions_close
from tests.support.hub_sessions import hub_session, opened

SESSIONS = 300


def redis_reads(redis_server) -> int:
    with redis_server.client() as client:
        return client.info("stats")["total_reads_processed"]


async def joined(*sessions) -> None:
    for session in sessions:
        await hub_router().join(session.connection_id, session.deliver, session._groups())


def test_closing_many_sessions_at_once_leaves_everything_in_a_few_round_trips(private_redis):
    """What a server's shutdown does: 300 sessions (150 users, a department) close together; one more session of
    the first user stays open."""
    sessions = [
        hub_session(1 + number % (SESSIONS // 2), department_ids=(7,), connection_id=f"conn-{number}")
        for number in range(SESSIONS)
    ]
    staying = hub_session(1, department_ids=(7,), connection_id="conn-staying")
    channels_layer = get_channel_layer()

    async def scenario() -> dict:
        await opened(*sessions, staying)
        await joined(*sessions, staying)
        channel = hub_router().channel_name
        before = await asyncio.to_thread(redis_reads, private_redis)
        await sessions_close(sessions)
        round_trips = await asyncio.to_thread(redis_reads, private_redis) - before
        await sessions_close(sessions)  # again (each connection's own close at shutdown): nothing more to do
        with private_redis.client() as client:
            group_members = {
                group: client.zscore(channels_layer._group_key(group), channel) is not None
                for group in (layer.user_group(1), layer.user_group(2), layer.department_group(7))
            }
        found = {
            "round_trips": round_trips,
            "live": await asyncio.to_thread(presence.live_connection_counts, range(1, SESSIONS // 2 + 1)),
            "department": await asyncio.to_thread(presence.department_connection_counts, [7]),
            "last_seen": set(await asyncio.to_thread(presence.last_seen, range(1, SESSIONS // 2 + 1))),
            "router": {
                group: hub_router().connection_count(group)
                for group in (layer.user_group(1), layer.user_group(2), layer.department_group(7))
            },
            "group_members": group_members,
            "refreshed": set(presence_refresher()._sessions),
        }
        await sessions_close([staying])
        return found

    found = asyncio.run(scenario())

    # One by one it was at least two round trips a session (presence, then the user's group): 600. Here: one for
    # presence, one for the groups, and the process's own traffic meanwhile (the router's receive, liveness, ticks).
    assert found["round_trips"] <= 40, found["round_trips"]
    assert found["live"] == {1: 1}  # only the session that stayed
    assert found["department"] == {7: {1: 1}}
    assert found["last_seen"] == set(range(2, SESSIONS // 2 + 1))  # user 1 is still online
    assert found["router"] == {layer.user_group(1): 1, layer.user_group(2): 0, layer.department_group(7): 1}
    assert found["group_members"] == {
        layer.user_group(1): True,
        layer.user_group(2): False,
        layer.department_group(7): True,
    }
    assert found["refreshed"] == {"conn-staying"}


def test_a_session_closed_alone_leaves_presence_and_its_groups(private_redis):
    session = hub_session(5, department_ids=(7,))

    async def scenario() -> tuple[dict, dict, dict, int]:
        await opened(session)
        await joined(session)
        await session.close()
        return (
            await asyncio.to_thread(presence.live_connection_counts, [5]),
            await asyncio.to_thread(presence.department_connection_counts, [7]),
            await asyncio.to_thread(presence.last_seen, [5]),
            hub_router().connection_count(layer.department_group(7)),
        )

    live, department, last_seen, in_department_group = asyncio.run(scenario())

    assert (live, department, in_department_group) == ({}, {7: {}}, 0)
    assert set(last_seen) == {5}
