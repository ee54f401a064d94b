"""`make run` stops with one line when Redis is unreachable (manage.py preflight)."""

import os
import subprocess
import sys
from urllib.parse import urlsplit

from tests.support.api import closed_port
from tests.support.servers import REPO_ROOT


def run_preflight(redis_url: str) -> subprocess.CompletedProcess:
    # The server's maintenance database: it exists wherever PostgreSQL runs (the app's may not, yet).
    database_url = urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    environment = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ENV_FILE": "/nonexistent"}
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
