"""When a user was last online (presence.last_seen): recorded by Redis when their last live connection closes."""

import asyncio
from datetime import UTC, datetime

import pytest
import redis

from notifications import presence
from tests.support.factories import UserFactory
from tests.support.waiting import eventually


def run(coroutine):
    return asyncio.run(coroutine)


def redis_now(client: redis.Redis) -> datetime:
    seconds, microseconds = client.time()
    return datetime.fromtimestamp(seconds + microseconds / 1_000_000, tz=UTC)


def test_the_last_connection_closing_records_when_in_redis_time_with_a_ttl(redis_client):
    run(presence.connection_alive(1, "tab"))
    run(presence.connection_alive(1, "phone"))

    run(presence.connection_gone(1, "tab"))
    assert presence.last_seen([1]) == {}  # the phone is still connected

    before = redis_now(redis_client)
    run(presence.connection_gone(1, "phone"))
    after = redis_now(redis_client)

    [(user_id, seen)] = presence.last_seen([1, 2]).items()
    assert user_id == 1
    assert before <= seen <= after
    assert 0 < redis_client.ttl(presence.last_seen_key(1)) <= presence.LAST_SEEN_TTL_SECONDS


def test_connecting_again_forgets_the_last_seen_so_a_killed_process_leaves_it_unknown(redis_client):
    run(presence.connection_alive(1, "tab"))
    run(presence.connection_gone(1, "tab"))
    assert 1 in presence.last_seen([1])

    run(presence.connection_alive(1, "laptop"))  # and then its process is killed: no connection_gone

    assert presence.last_seen([1]) == {}


def test_a_restarted_redis_without_the_script_still_records_it(redis_client):
    run(presence.connection_alive(3, "tab"))
    redis_client.script_flush()

    run(presence.connection_gone(3, "tab"))

    assert presence.live_connection_counts([3]) == {}
    assert 3 in presence.last_seen([3])


def test_connecting_to_a_restarted_redis_without_the_script_registers_and_forgets_the_last_seen(redis_client):
    run(presence.connection_alive(4, "tab"))
    run(presence.connection_gone(4, "tab"))
    redis_client.script_flush()

    run(presence.connection_alive(4, "phone"))

    assert presence.live_connection_counts([4]) == {4: 1}
    assert presence.last_seen([4]) == {}


@pytest.mark.django_db(transaction=True)
def test_a_real_hub_connection_closing_records_its_users_last_seen(connect, redis_client):
    user = UserFactory()
    client = connect(user)
    assert presence.last_seen([user.pk]) == {}

    client.close()

    assert eventually(lambda: user.pk in presence.last_seen([user.pk]))
