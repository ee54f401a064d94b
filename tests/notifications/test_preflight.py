"""`make run` stops with one line when Redis or PostgreSQL is unreachable, creates a missing database, and starts
the host's metrics afresh (manage.py preflight)."""

import os
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg

from tests.support.api import closed_port
from tests.support.metrics import metrics_writer
from tests.support.servers import REPO_ROOT


def maintenance_database_url(name: str = "postgres") -> str:
    """The test server with another database: `postgres` exists wherever PostgreSQL runs (the app's may not)."""
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


def run_preflight(
    redis_url: str, database_url: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    database_url = database_url or maintenance_database_url()
    environment = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ENV_FILE": "/nonexistent"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", "preflight"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_redis_stops_with_one_line_naming_redis_url():
    url = f"redis://127.0.0.1:{closed_port()}/0"
    result = run_preflight(url)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"REDIS_URL={url}" in lines[0]
    assert "redis-server" in lines[0]


def test_reachable_services_pass():
    result = run_preflight(os.environ["REDIS_URL"])
    assert result.returncode == 0, result.stderr
    assert "reachable" in result.stdout


def test_unreachable_postgresql_stops_with_one_line_naming_database_url():
    url = f"postgres://postgres@127.0.0.1:{closed_port()}/notifyhub"
    result = run_preflight(os.environ["REDIS_URL"], url)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"DATABASE_URL={url}" in lines[0]
    assert "start PostgreSQL" in lines[0]


def test_a_missing_database_is_created(django_db_blocker):
    name = "notifyhub_preflight_created"
    with django_db_blocker.unblock(), psycopg.connect(maintenance_database_url(), autocommit=True) as server:
        server.execute(f"DROP DATABASE IF EXISTS {name}")
        try:
            result = run_preflight(os.environ["REDIS_URL"], maintenance_database_url(name))

            assert result.returncode == 0, result.stderr
            assert f"Created the PostgreSQL database {name}." in result.stdout
            assert server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() == (1,)
        finally:
            server.execute(f"DROP DATABASE IF EXISTS {name}")


def test_the_metrics_of_an_earlier_run_are_emptied_unless_one_of_its_processes_still_writes(tmp_path):
    metrics_dir = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    gone = metrics_writer(tmp_path)  # an earlier run's process
    gone.wait()
    still_running = metrics_writer(tmp_path, stay=True)
    try:
        kept = run_preflight(os.environ["REDIS_URL"], env=metrics_dir)

        assert kept.returncode == 0, kept.stderr
        assert f"processes {still_running.pid} still write there" in kept.stdout
        assert {f"counter_{gone.pid}.db", f"counter_{still_running.pid}.db"} <= {
            path.name for path in tmp_path.glob("counter_*.db")
        }
    finally:
        still_running.kill()
        still_running.wait()

    emptied = run_preflight(os.environ["REDIS_URL"], env=metrics_dir)

    assert emptied.returncode == 0, emptied.stderr
    assert "still write" not in emptied.stdout
    assert list(tmp_path.glob("*.db")) == []
