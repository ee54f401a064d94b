"""GET /metrics: who may scrape (METRICS_ALLOWED_NETWORKS, METRICS_TOKEN), refusals in the API's error shape."""

import ipaddress
import struct
from pathlib import Path

import pytest
from django.test import Client

from core import metrics as host_metrics
from tests.support.api import assert_error, closed_port
from tests.support.metrics import parse, value


@pytest.fixture
def scraper() -> Client:
    return Client(HTTP_HOST="localhost")


def test_loopback_scrapes_by_default(scraper):
    response = scraper.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert ("notifyhub_sweep_runs_total", frozenset()) in parse(response.content)


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.7", "2001:db8::1"])
def test_other_networks_are_refused(scraper, address):
    assert_error(scraper.get("/metrics", REMOTE_ADDR=address), 403, "permission_denied")


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"])
def test_only_the_resolved_client_address_counts_not_a_header_naming_one(scraper, settings, header):
    # notifyhub/proxies.py resolves the client (from trusted proxies only) before Django: the view reads REMOTE_ADDR.
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert_error(scraper.get("/metrics", **{header: "10.0.0.5"}), 403, "permission_denied")


def test_listed_networks_are_allowed_and_only_them(scraper, settings):
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]

    assert scraper.get("/metrics", REMOTE_ADDR="10.200.0.1").status_code == 200
    assert scraper.get("/metrics", REMOTE_ADDR="::ffff:10.200.0.1").status_code == 200  # a dual-stack socket
    assert_error(scraper.get("/metrics"), 403, "permission_denied")


def test_with_a_token_the_bearer_must_send_it(scraper, settings):
    settings.METRICS_TOKEN = "scrape-secret"

    missing = assert_error(scraper.get("/metrics"), 401, "not_authenticated")
    assert "METRICS_TOKEN" in missing["message"]
    assert scraper.get("/metrics")["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert_error(scraper.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"), 401, "authentication_failed")
    assert_error(scraper.get("/metrics", HTTP_AUTHORIZATION="Basic scrape-secret"), 401, "authentication_failed")
    assert scraper.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def test_with_any_network_allowed_the_token_alone_decides(scraper, settings):
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_TOKEN = "scrape-secret"

    allowed = scraper.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert allowed.status_code == 200
    assert_error(scraper.get("/metrics", REMOTE_ADDR="203.0.113.9"), 401, "not_authenticated")


def test_scrapes_are_not_throttled_like_the_api(scraper, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "1/minute"}}

    assert [scraper.get("/metrics").status_code for _ in range(3)] == [200, 200, 200]


def test_only_get(scraper):
    response = scraper.post("/metrics")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


def test_unreadable_metrics_answer_503_in_the_error_shape(scraper):
    broken = Path(host_metrics.METRICS_DIR, "counter_999999999.db")
    # 64 bytes used, whose first entry claims a 1,000-byte key: prometheus-client calls the file corrupted.
    broken.write_bytes(struct.pack("i", 64) + bytes(4) + struct.pack("i", 1000) + bytes(52))
    try:
        assert_error(scraper.get("/metrics"), 503, "metrics_unavailable")
    finally:
        broken.unlink()
    assert scraper.get("/metrics").status_code == 200


def test_redis_away_leaves_the_presence_counts_out_and_says_so(scraper, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    samples = parse(scraper.get("/metrics").content)

    assert value(samples, "notifyhub_presence_registry_up") == 0
    assert ("notifyhub_users_online", frozenset()) not in samples
