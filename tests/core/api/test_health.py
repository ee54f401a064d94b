"""GET /healthz: 200 when the database, Redis and the channel layer answer; 503 naming what did not."""

import pytest

from notifications.health import check_channel_layer
from tests.support.api import client_for, closed_port

pytestmark = pytest.mark.django_db


def test_all_up_is_200():
    """A process with no hub connection has no router yet: that is ok (the router's own failures: test_router.py)."""
    response = client_for().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "channel_layer": "ok", "hub_router": "ok"},
        "failed": [],
    }


def test_channel_layer_check_makes_a_round_trip():
    assert check_channel_layer() is None


def test_redis_down_is_503_naming_redis_and_the_channel_layer(settings):
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL = dead
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }

    response = client_for().get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "failed", "channel_layer": "failed", "hub_router": "ok"},
        "failed": ["redis", "channel_layer"],
    }


def test_health_ignores_credentials():
    response = client_for().get("/healthz", headers={"Authorization": "Bearer garbage"})
    assert response.status_code == 200
