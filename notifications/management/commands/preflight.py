"""Fail fast, in one line each, when a service NotifyHub needs is unreachable; create a missing database; start
the host's metrics afresh.

`make run` runs this before migrating: a fresh clone on a machine with PostgreSQL and Redis running
starts with no set-up, and one without them is told which variable to fix and how to start the service.
It also empties the metrics directory (PROMETHEUS_MULTIPROC_DIR) of the processes of an earlier run, unless
one of them still runs (core/metrics.py): run it once before starting the system's processes, not per process.
"""

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

from core.health import check_database, check_redis
from core.metrics import metrics_dir_reset

REDIS_HINT = (
    "start Redis (e.g. `redis-server --daemonize yes --port 6379 --save ''`) "
    "or point REDIS_URL in .env at a running server"
)
POSTGRES_HINT = (
    "start PostgreSQL (e.g. `sudo systemctl start postgresql`, or `pg_ctlcluster <version> main start`) "
    "or point DATABASE_URL in .env at a running server"
)


class Command(BaseCommand):
    help = (
        "Check that Redis (REDIS_URL) and PostgreSQL (DATABASE_URL) are reachable; create the database if missing; "
        "empty the metrics directory of an earlier run's processes."
    )

    def handle(self, *args, **options) -> None:
        problem = check_redis()
        if problem:
            raise CommandError(f"Redis is unreachable at REDIS_URL={settings.REDIS_URL} ({problem}); {REDIS_HINT}.")
        database = settings.DATABASES["default"]
        if _create_database_if_missing(database):
            self.stdout.write(f"Created the PostgreSQL database {database['NAME']}.")
        problem = check_database()
        if problem:
            raise CommandError(
                f"PostgreSQL is unreachable at DATABASE_URL={_display_url(database)} ({problem}); {POSTGRES_HINT}."
            )
        self.stdout.write("Redis and PostgreSQL are reachable.")
        still_running = metrics_dir_reset()
        if still_running:
            pids = ", ".join(map(str, still_running))
            self.stdout.write(f"Metrics directory {settings.METRICS_DIR} kept: processes {pids} still write there.")


def _connect(database: dict, name: str) -> psycopg.Connection:
    return psycopg.connect(
        dbname=name,
        user=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or None,
        port=database.get("PORT") or None,
        connect_timeout=5,
        autocommit=True,
    )


def _create_database_if_missing(database: dict) -> bool:
    """CREATE DATABASE unless it exists (asked of the server's maintenance database `postgres`); True if created.

    A server that cannot be asked (down, no `postgres` database, no right to create) is left to the
    reachability check, which names DATABASE_URL.
    """
    try:
        with _connect(database, "postgres") as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone()
            if exists:
                return False
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"])))
    except psycopg.Error:
        return False
    return True


def _display_url(database: dict) -> str:
    """DATABASE_URL as settings read it, without its password."""
    user = f"{database['USER']}@" if database.get("USER") else ""
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgres://{user}{database.get('HOST') or ''}{port}/{database['NAME']}"
