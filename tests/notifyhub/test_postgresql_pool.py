"""notifyhub/postgresql: after every pooled connection died (a PostgreSQL restart), the next one handed out works."""

import pytest
from django.db import connection
from psycopg_pool import ConnectionPool, PoolTimeout

from notifyhub.postgresql.base import _check_or_drop_the_dead
from tests.support.servers import database_url

pytestmark = pytest.mark.django_db(transaction=True)

IDLE = 6
# psycopg's own check sleeps 1, 2, 4 ... s between dead connections: six of them cannot be got through in 3 s.
TIMEOUT = 3


def pool_with_dead_connections(check) -> ConnectionPool:
    pool = ConnectionPool(
        database_url().replace("postgres://", "postgresql://"),
        min_size=IDLE,
        max_size=IDLE,
        timeout=TIMEOUT,
        check=check,
        open=True,
        kwargs={"application_name": "pool-under-test", "autocommit": True},
    )
    pool.wait()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pool-under-test'"
        )
        assert cursor.fetchone()[0] == IDLE
    return pool


def test_the_first_dead_connection_takes_every_other_dead_one_with_it():
    holder = {}
    pool = pool_with_dead_connections(_check_or_drop_the_dead(lambda: holder.get("pool")))
    holder["pool"] = pool
    try:
        with pool.connection() as fresh:
            assert fresh.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()


def test_psycopgs_plain_check_alone_runs_out_of_time():
    """What the backend's check replaces (if a psycopg release fixes this, this test says so)."""
    pool = pool_with_dead_connections(ConnectionPool.check_connection)
    try:
        with pytest.raises(PoolTimeout), pool.connection():
            pass
    finally:
        pool.close()
