"""The presence registry's department and room records (the per-user part is covered with dispatch)."""

import asyncio
import time

import pytest

from notifications import presence


def run(coroutine):
    return asyncio.run(coroutine)


def test_connection_alive_records_departments_and_rooms_and_gone_removes_them(redis_client):
    run(presence.connection_alive(1, "conn-a", department_ids=[7, 8], document_ids=[30]))
    run(presence.connection_alive(2, "conn-b", department_ids=[7]))

    assert presence.live_connection_counts([1, 2, 3]) == {1: 1, 2: 1}
    assert presence.department_connection_counts([7, 8, 9]) == {7: {1: 1, 2: 1}, 8: {1: 1}, 9: {}}

    run(presence.connection_gone(1, "conn-a", department_ids=[7, 8], document_ids=[30]))

    assert presence.live_connection_counts([1, 2]) == {2: 1}
    assert presence.department_connection_counts([7, 8]) == {7: {2: 1}, 8: {}}
    assert redis_client.zcard(presence.room_key(30)) == 0


def test_stale_entries_do_not_count(redis_client):
    redis_client.zadd(presence.presence_key(5), {"crashed": time.time() - 1})
    redis_client.zadd(presence.department_key(7), {"5:crashed": time.time() - 1})

    assert presence.live_connection_counts([5]) == {}
    assert presence.department_connection_counts([7]) == {7: {}}


def test_room_entry_lists_users_once_and_leave_reports_the_last_connection(redis_client):
    assert run(presence.room_entered(30, 1, "tab-1")) == [1]
    assert run(presence.room_entered(30, 1, "tab-2")) == [1]
    assert run(presence.room_entered(30, 2, "phone")) == [1, 2]

    assert run(presence.room_left(30, 1, "tab-1")) is False  # tab-2 is still there
    assert run(presence.room_left(30, 1, "tab-2")) is True
    assert run(presence.room_entered(30, 3, "laptop")) == [2, 3]


def test_more_concurrent_calls_than_pooled_connections_wait_instead_of_failing(redis_client, monkeypatch):
    """Thousands of clients disconnecting at once each clean up their presence; none may be refused."""
    monkeypatch.setattr(presence, "MAX_ASYNC_CONNECTIONS", 20)
    user_ids = range(1, 201)

    async def everyone_connects_then_leaves() -> None:
        await asyncio.gather(*(presence.connection_alive(user_id, f"c{user_id}") for user_id in user_ids))
        await asyncio.gather(*(presence.connection_gone(user_id, f"c{user_id}") for user_id in user_ids))

    run(everyone_connects_then_leaves())

    assert presence.live_connection_counts(user_ids) == {}


def test_replies_are_parsed_by_hiredis(redis_client):
    """redis-py parses replies in pure Python unless hiredis is installed: 3-5x the CPU of a 1,000-member lookup."""
    from redis._parsers import _AsyncHiredisParser, _HiredisParser

    presence.live_connection_counts([1])  # opens a pooled connection
    sync_connection = presence._client().connection_pool.get_connection()
    try:
        assert isinstance(sync_connection._parser, _HiredisParser)
    finally:
        presence._client().connection_pool.release(sync_connection)

    async def async_parser():
        await presence.live_connection_count(1)
        client = presence._async_client()
        connection = await client.connection_pool.get_connection()
        try:
            return connection._parser
        finally:
            await client.connection_pool.release(connection)
            await client.aclose()

    assert isinstance(run(async_parser()), _AsyncHiredisParser)


@pytest.mark.parametrize("count", [1, presence.GONE_PER_ROUND_TRIP + 1])
def test_connections_gone_removes_every_connection_and_records_who_is_offline(redis_client, count):
    gone = [presence.LiveConnection(user_id, f"c{user_id}", (7,), (30,)) for user_id in range(1, count + 1)]

    async def scenario() -> None:
        await presence.connections_alive([*gone, presence.LiveConnection(1, "other-tab", (7,))], online_again=True)
        await presence.connections_gone(gone)

    asyncio.run(scenario())

    users = range(1, count + 1)
    assert presence.live_connection_counts(users) == {1: 1}  # user 1's other tab
    assert presence.department_connection_counts([7]) == {7: {1: 1}}
    assert not redis_client.exists(presence.room_key(30))
    assert set(presence.last_seen(users)) == set(users) - {1}
