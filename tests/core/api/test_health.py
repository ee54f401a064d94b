"""GET /livez (the process answers) and GET /readyz, alias /healthz (the database, Redis, the channel layer and
the hub router answer: 200, else 503 naming what did not), from results shared for READINESS_MAX_AGE seconds."""

import threading

import pytest
import redis
from django.conf import settings as django_settings

from core import health
from notifications.health import check_channel_layer
from tests.support.api import client_for, closed_port

pytestmark = pytest.mark.django_db

ALL_OK = {"database": "ok", "redis": "ok", "channel_layer": "ok", "hub_router": "ok"}


@pytest.mark.parametrize("path", ["/readyz", "/healthz"])
def test_all_up_is_200(path):
    """A process with no hub connection has no router yet: that is ok (the router's own failures: test_router.py)."""
    response = client_for().get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": ALL_OK, "failed": []}


def test_channel_layer_check_makes_a_round_trip():
    assert check_channel_layer() is None


def dead_redis(settings) -> None:
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL = dead
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": dead}}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }


def test_redis_down_is_503_naming_redis_and_the_channel_layer(settings):
    dead_redis(settings)

    response = client_for().get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {**ALL_OK, "redis": "failed", "channel_layer": "failed"},
        "failed": ["redis", "channel_layer"],
    }


def test_liveness_answers_without_touching_redis_or_the_database(settings):
    dead_redis(settings)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client_for().get("/livez")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert len(queries) == 0


def test_health_ignores_credentials():
    response = client_for().get("/readyz", headers={"Authorization": "Bearer garbage"})
    assert response.status_code == 200


def connections_received(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


def test_a_flood_of_probes_opens_no_redis_connection_and_runs_the_checks_once(settings):
    settings.READINESS_MAX_AGE = 60
    client_for().get("/readyz")  # the process's clients exist from here on, as in a serving process
    health.forget_readiness()
    watcher = redis.Redis.from_url(django_settings.REDIS_URL)
    runs = []
    health.register("counted", lambda: runs.append(1))
    try:
        before = connections_received(watcher)
        answers = []

        def probe() -> None:
            for _ in range(10):
                answers.append(client_for().get("/readyz").status_code)

        threads = [threading.Thread(target=probe) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert answers == [200] * 50
        assert len(runs) == 1
        assert connections_received(watcher) - before == 0
    finally:
        health._checks.pop("counted")
        watcher.close()


def test_results_older_than_the_max_age_are_checked_again(settings):
    settings.READINESS_MAX_AGE = 0
    runs = []
    health.register("counted", lambda: runs.append(1))
    try:
        for _ in range(3):
            assert client_for().get("/readyz").status_code == 200
        assert len(runs) == 3
    finally:
        health._checks.pop("counted")
