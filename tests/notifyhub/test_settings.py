"""Settings come from the environment; bad values stop the process with one clear line."""

import pytest

from tests.support.settings_process import load_settings


def test_valid_environment_loads():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False redis://127.0.0.1:6379/0"


def test_database_defaults_to_the_local_postgresql_for_make_run():
    result = load_settings(
        "d = settings.DATABASES['default']; print(d['ENGINE'], d['HOST'], d['PORT'], d['NAME'])", DATABASE_URL=None
    )
    assert result.stdout.strip() == "django.db.backends.postgresql 127.0.0.1 5432 notifyhub", result.stderr


def test_every_bad_value_is_reported_at_once_one_line_each():
    result = load_settings(DEBUG="maybe", WS_RATE_BURST="0", REDIS_URL="http://127.0.0.1:6379")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line.removeprefix("NotifyHub configuration error: ") for line in lines] == [
        "DEBUG='maybe' is not a boolean (use true or false)",
        "REDIS_URL='http://127.0.0.1:6379' is not a Redis URL (e.g. redis://127.0.0.1:6379/0)",
        "WS_RATE_BURST=0 must be at least 1",
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is required but not set"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is required but empty"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL='not a url' is not a PostgreSQL URL"),
        ({"DATABASE_URL": "sqlite:///db.sqlite3"}, "DATABASE_URL='sqlite:///db.sqlite3' is not a PostgreSQL URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL='http://127.0.0.1:6379' is not a Redis URL"),
        ({"JWT_ACCESS_TOKEN_LIFETIME": "soon"}, "JWT_ACCESS_TOKEN_LIFETIME='soon' is not an integer"),
        ({"WS_RATE_LIMIT": "fast"}, "WS_RATE_LIMIT='fast' is not a number"),
        ({"PORT": "web"}, "PORT='web' is not an integer"),
        ({"WS_RATE_BURST": "0"}, "WS_RATE_BURST=0 must be at least 1"),
        ({"API_RATE_USER": "fast"}, "API_RATE_USER='fast' is not a rate like 600/minute"),
        ({"API_RATE_PUBLISH": "0/minute"}, "API_RATE_PUBLISH='0/minute' is not a rate"),
        ({"API_MAX_BODY_BYTES": "10"}, "API_MAX_BODY_BYTES=10 must be at least 1024"),
        ({"API_RATE_AUTH_USERNAME": "10"}, "API_RATE_AUTH_USERNAME='10' is not a rate like 600/minute"),
        ({"TRUSTED_PROXIES": "localhost"}, "TRUSTED_PROXIES: 'localhost' is not an IP address or network"),
        ({"TRUSTED_PROXIES": "10.0.0.1/8"}, "TRUSTED_PROXIES: '10.0.0.1/8' is not an IP address or network"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES: '10.0.0.0/33' is not an IP address or network"),
        (
            {"API_TRUSTED_PROXIES": "1"},  # a count, which trusted the header from any peer
            "API_TRUSTED_PROXIES is replaced by TRUSTED_PROXIES: list your proxies' addresses",
        ),
        ({"ADMIN_LOGIN_MAX_FAILURES": "0"}, "ADMIN_LOGIN_MAX_FAILURES=0 must be at least 1"),
        ({"ADMIN_LOGIN_COOLOFF": "soon"}, "ADMIN_LOGIN_COOLOFF='soon' is not an integer"),
        ({"NOTIFY_PUSH_BACKEND": "apns"}, "NOTIFY_PUSH_BACKEND='apns' must be one of: fcm, log"),
        (
            {"NOTIFY_PUSH_BACKEND": "fcm", "FCM_CREDENTIALS_FILE": None, "GOOGLE_APPLICATION_CREDENTIALS": None},
            "NOTIFY_PUSH_BACKEND=fcm needs FCM_CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS",
        ),
        ({"FCM_CREDENTIALS_FILE": "/no/such/file.json"}, "FCM_CREDENTIALS_FILE='/no/such/file.json' is not a readable"),
        ({"NOTIFY_MAX_WS_ATTEMPTS": "0"}, "NOTIFY_MAX_WS_ATTEMPTS=0 must be at least 1"),
        ({"NOTIFY_MAX_DEVICES_PER_USER": "0"}, "NOTIFY_MAX_DEVICES_PER_USER=0 must be at least 1"),
        ({"NOTIFY_PUBLISH_BATCH_MAX": "0"}, "NOTIFY_PUBLISH_BATCH_MAX=0 must be at least 1"),
        ({"NOTIFY_RETENTION_DAYS": "-1"}, "NOTIFY_RETENTION_DAYS=-1 must be at least 0"),
        ({"NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS": "0"}, "NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS=0 must be at least 1"),
        (
            {"NOTIFY_RETENTION_DAYS": "1", "NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS": "25"},
            "NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS must not outlast NOTIFY_RETENTION_DAYS",
        ),
        ({"ASGI_SERVER": "uvicorn", "WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY='two' is not an integer"),
        ({"ASGI_SERVER": "uvicorn", "WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY=0 must be at least 1"),
        (
            {"ASGI_SERVER": "daphne", "WEB_CONCURRENCY": "2"},
            "WEB_CONCURRENCY=2 needs ASGI_SERVER=uvicorn (daphne runs one process)",
        ),
        ({"SIGNALR_KEEPALIVE_INTERVAL": "often"}, "SIGNALR_KEEPALIVE_INTERVAL='often' is not a number"),
        (
            {"SIGNALR_KEEPALIVE_INTERVAL": "30", "SIGNALR_CLIENT_TIMEOUT": "30"},
            "SIGNALR_CLIENT_TIMEOUT must be longer than SIGNALR_KEEPALIVE_INTERVAL",
        ),
        (
            {"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,intranet"},
            "METRICS_ALLOWED_NETWORKS: 'intranet' is not an IP address or network",
        ),
        (
            {"METRICS_ALLOWED_NETWORKS": "", "METRICS_TOKEN": None},
            "METRICS_ALLOWED_NETWORKS is empty (any network) and METRICS_TOKEN is not set",
        ),
    ],
)
def test_bad_value_fails_with_one_clear_line(overrides, expected):
    result = load_settings(**overrides)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("NotifyHub configuration error: ")
    assert expected in lines[0]


def test_api_limits_come_from_the_environment():
    result = load_settings(
        "print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], settings.API_MAX_BODY_BYTES)",
        API_RATE_PUBLISH="5/second",
        API_MAX_BODY_BYTES="2048",
    )
    assert result.stdout.strip() == (
        "{'user': '600/minute', 'publish': '5/second', 'auth': '20/minute', 'auth_username': '10/minute'} 2048"
    ), result.stderr


PRINT_TRUSTED_PROXIES = "print([str(network) for network in settings.TRUSTED_PROXIES])"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "[]"),  # not even loopback: a proxy on this host is listed like any other
        ("127.0.0.1", "['127.0.0.1/32']"),
        (" 127.0.0.1, ::1 ,10.0.0.0/8,", "['127.0.0.1/32', '::1/128', '10.0.0.0/8']"),
    ],
)
def test_trusted_proxies_are_addresses_and_networks(value, expected):
    result = load_settings(PRINT_TRUSTED_PROXIES, TRUSTED_PROXIES=value)
    assert result.stdout.strip() == expected, result.stderr


@pytest.mark.parametrize("count", ["0", ""])
def test_the_old_proxy_count_left_at_none_is_harmless(count):
    """`make run` copied API_TRUSTED_PROXIES=0 into every .env made before TRUSTED_PROXIES."""
    result = load_settings(PRINT_TRUSTED_PROXIES, API_TRUSTED_PROXIES=count)
    assert result.stdout.strip() == "[]", result.stderr


def test_password_in_malformed_url_is_not_printed():
    result = load_settings(REDIS_URL="http://user:hunter2@host:1")
    assert result.returncode == 1
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("origins", [None, ""])
def test_websocket_origins_default_to_the_allowed_hosts(origins):
    result = load_settings(
        "print(settings.WS_ALLOWED_ORIGINS)",
        ALLOWED_HOSTS="notify.example.com,.corp.example",
        WS_ALLOWED_ORIGINS=origins,
    )
    assert result.stdout.strip() == "['notify.example.com', '.corp.example']", result.stderr


def test_websocket_origins_can_be_listed():
    result = load_settings(
        "print(settings.WS_ALLOWED_ORIGINS)", WS_ALLOWED_ORIGINS="https://app.example.com, http://localhost:3000"
    )
    assert result.stdout.strip() == "['https://app.example.com', 'http://localhost:3000']", result.stderr


PRINT_POOL = "print(settings.DATABASES['default'].get('OPTIONS', {}).get('pool'))"
AS_WEB_PROCESS = "import notifyhub.asgi"  # what daphne and uvicorn load


def test_only_the_web_process_pools_postgresql_connections():
    web = load_settings(PRINT_POOL, setup=AS_WEB_PROCESS)
    assert web.stdout.strip() == "{'min_size': 4, 'max_size': 20, 'timeout': 10}", web.stderr
    # ... through the backend whose pool checks each connection it hands out (dead after a PostgreSQL restart).
    checked = load_settings("print(settings.DATABASES['default']['ENGINE'])", setup=AS_WEB_PROCESS)
    assert checked.stdout.strip() == "notifyhub.postgresql", checked.stderr
    # Celery worker, beat and manage.py set Django up without the web process's mark: no pool to inherit on fork.
    other = load_settings(PRINT_POOL)
    assert other.stdout.strip() == "None", other.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DATABASE_POOL_MAX_SIZE": "3"}, "{'min_size': 3, 'max_size': 3, 'timeout': 10}"),
        ({"DATABASE_POOL_MAX_SIZE": "0"}, "None"),
    ],
)
def test_the_web_process_pool_follows_database_pool_max_size(overrides, expected):
    result = load_settings(PRINT_POOL, setup=AS_WEB_PROCESS, **overrides)
    assert result.stdout.strip() == expected, result.stderr


def test_bad_database_pool_max_size_fails_with_one_clear_line():
    result = load_settings(DATABASE_POOL_MAX_SIZE="many")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_POOL_MAX_SIZE" in lines[0], result.stderr


PRINT_WEB_PROCESSES = "print(settings.ASGI_SERVER, settings.WEB_CONCURRENCY)"


def test_one_web_process_by_default():
    result = load_settings(PRINT_WEB_PROCESSES, ASGI_SERVER=None, WEB_CONCURRENCY=None)
    assert result.stdout.strip() == "uvicorn 1", result.stderr


def test_uvicorn_may_serve_from_several_processes():
    result = load_settings(PRINT_WEB_PROCESSES, ASGI_SERVER="uvicorn", WEB_CONCURRENCY="4")
    assert result.stdout.strip() == "uvicorn 4", result.stderr


def test_metrics_networks_and_the_directory_every_process_inherits(tmp_path):
    result = load_settings(
        "import os; print(settings.METRICS_ALLOWED_NETWORKS, os.environ['PROMETHEUS_MULTIPROC_DIR'])",
        METRICS_ALLOWED_NETWORKS="10.1.2.3, 192.168.0.0/16",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    assert result.stdout.strip() == (f"[IPv4Network('10.1.2.3/32'), IPv4Network('192.168.0.0/16')] {tmp_path}"), (
        result.stderr
    )

    by_default = load_settings("print(settings.METRICS_ALLOWED_NETWORKS)", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert by_default.stdout.strip() == "[IPv4Network('127.0.0.0/8'), IPv6Network('::1/128')]", by_default.stderr
