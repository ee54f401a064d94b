"""NotifyHub settings: what every process loads (web, worker, sweeper, beat, manage.py).

In three parts:
1. The environment: every variable a deployment sets is read here and only here, through the typed
   layer `notifyhub.env`, grouped as `.env.example` documents them. A bad value stops the process
   with one line per problem before anything else runs.
2. Django and the libraries, built from those values.
3. What differs by kind of process (the web process's connection pool).

The test suite's differences are in `notifyhub/settings/test.py`. A `.env` file beside `manage.py` is
read if present (ENV_FILE points elsewhere, or at a missing file to read none); real environment
variables win over it.
"""

import os
import re
from datetime import timedelta
from pathlib import Path

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from notifyhub import process
from notifyhub.env import env, read_env_file

BASE_DIR = Path(__file__).resolve().parent.parent.parent
read_env_file(Path(os.environ.get("ENV_FILE", BASE_DIR / ".env")))

# =====================================================================================================
# 1. The environment (.env.example documents each variable)
# =====================================================================================================

# --- Core ---------------------------------------------------------------------------------------------
SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
# SECRET_KEY signs sessions and every JWT: outside DEBUG a placeholder or a short key is refused (the production
# settings, notifyhub/settings/production.py, ask for Django's own rule: 50 characters, 5 different).
PLACEHOLDER_SECRET_KEYS = ("change-me", "changeme", "secret")
env.check(
    DEBUG or not SECRET_KEY or (SECRET_KEY not in PLACEHOLDER_SECRET_KEYS and len(SECRET_KEY) >= 32),
    "SECRET_KEY is a placeholder or shorter than 32 characters, and DEBUG is off: set a long random key "
    "(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# plain: one human-readable line per event; json: one JSON object per line, for a log collector.
LOG_FORMAT = env.choice("LOG_FORMAT", choices=("plain", "json"), default="plain")

# --- PostgreSQL and Redis -------------------------------------------------------------------------------
# PostgreSQL only: the sweep's safety rests on SKIP LOCKED, and publishing writes its rows in set-based
# statements (unnest, data-modifying CTEs) that have no portable twin.
DATABASES = {"default": env.postgres_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/notifyhub")}
# Connections each web process keeps in its pool (0: none); see part 3.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=20, minimum=0)
# The channel layer, presence registry, Celery broker and cache.
REDIS_URL = env.redis_url("REDIS_URL", default="redis://127.0.0.1:6379/0")

# --- The web process (`python -m notifyhub.web`, the Procfile's web line) ------------------------------
ASGI_SERVERS = ("daphne", "uvicorn")
ASGI_SERVER = env.choice("ASGI_SERVER", choices=ASGI_SERVERS, default="uvicorn")
WEB_BIND = env.str("WEB_BIND", default="127.0.0.1")
WEB_PORT = env.int("PORT", default=8000, minimum=1)
# Processes serving the port (uvicorn's --workers; daphne serves from one process).
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=1, minimum=1)
# permessage-deflate, which every browser offers: uvicorn would keep zlib state per connection (~40 KiB) and
# compress every frame per connection (~40% more CPU per delivered notification, docs/performance.md) for
# notifications of a few hundred bytes. Off unless asked for.
WS_PER_MESSAGE_DEFLATE = env.bool("WS_PER_MESSAGE_DEFLATE", default=False)
# Where collectstatic writes and whitenoise serves from (a relative path is beside manage.py).
STATIC_ROOT = BASE_DIR / env.str("STATIC_ROOT", default="staticfiles")
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto / X-Real-IP are believed (addresses and CIDR networks;
# notifyhub/proxies.py). Empty: none, not even loopback, so a client is always its socket's peer. A proxy on this
# host is 127.0.0.1 (or ::1) and must be listed like any other.
TRUSTED_PROXIES = env.ip_networks("TRUSTED_PROXIES", default=[])
# It counted proxies, trusting the header from any peer; a deployment that set it must list addresses instead.
env.check(
    env.str("API_TRUSTED_PROXIES", default="0").strip() in ("", "0"),
    "API_TRUSTED_PROXIES is replaced by TRUSTED_PROXIES: list your proxies' addresses (e.g. 127.0.0.1, 10.0.0.0/8)",
)
env.check(
    WEB_CONCURRENCY == 1 or ASGI_SERVER == "uvicorn",
    f"WEB_CONCURRENCY={WEB_CONCURRENCY} needs ASGI_SERVER=uvicorn ({ASGI_SERVER} runs one process)",
)
env.check(
    not WS_PER_MESSAGE_DEFLATE or ASGI_SERVER == "uvicorn",
    f"WS_PER_MESSAGE_DEFLATE=true needs ASGI_SERVER=uvicorn ({ASGI_SERVER} does not compress frames)",
)

# --- REST API and JWT -----------------------------------------------------------------------------------
THROTTLE_RATE_FORMAT = re.compile(r"^[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)\Z")
# Largest JSON request body the API parses; larger ones get 413.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=65_536, minimum=1_024)
API_THROTTLE_RATES = {
    "user": env.str("API_RATE_USER", default="600/minute").strip(),
    "publish": env.str("API_RATE_PUBLISH", default="600/minute").strip(),
    "auth": env.str("API_RATE_AUTH", default="20/minute").strip(),
    "auth_username": env.str("API_RATE_AUTH_USERNAME", default="10/minute").strip(),
}
for _scope, _rate in API_THROTTLE_RATES.items():
    env.check(
        bool(THROTTLE_RATE_FORMAT.match(_rate)),
        f"API_RATE_{_scope.upper()}={_rate!r} is not a rate like 600/minute (per second, minute, hour or day)",
    )
# /readyz (and /healthz) answer from checks at most this many seconds old: probes cannot load Redis or PostgreSQL.
READINESS_MAX_AGE = env.float("READINESS_MAX_AGE", default=2, minimum=0)
# Signs JWTs when set (otherwise SECRET_KEY does): rotating one then leaves the other's sessions or tokens valid.
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="")
env.check(not JWT_SIGNING_KEY or len(JWT_SIGNING_KEY) >= 32, "JWT_SIGNING_KEY is shorter than 32 characters")
JWT_ACCESS_TOKEN_LIFETIME = env.int("JWT_ACCESS_TOKEN_LIFETIME", default=900)
JWT_REFRESH_TOKEN_LIFETIME = env.int("JWT_REFRESH_TOKEN_LIFETIME", default=86_400)

# --- Signing in to the admin (/admin/login/) and the web pages (/sign-in/) ----------------------------------
# This many failed sign-ins of one username from one client address within ADMIN_LOGIN_COOLOFF seconds refuse that
# pair for ADMIN_LOGIN_COOLOFF seconds, the right password too; both pages count together (core/sign_in.py).
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5, minimum=1)
ADMIN_LOGIN_COOLOFF = env.int("ADMIN_LOGIN_COOLOFF", default=900, minimum=1)
# Seconds an access token for the pages' WebSocket lives (POST /web/token/): the page asks for another before then.
WEB_ACCESS_TOKEN_LIFETIME = env.int("WEB_ACCESS_TOKEN_LIFETIME", default=300, minimum=5)

# --- Celery processes (the Procfile's worker and beat lines) -----------------------------------------------
# Push-task processes of the `worker` line (the `sweeper` line runs one), and where beat keeps its schedule.
CELERY_WORKER_CONCURRENCY = env.int("CELERY_CONCURRENCY", default=2, minimum=1)
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILE", default=str(BASE_DIR / ".celerybeat-schedule"))

# --- Metrics (/metrics in the Prometheus text format; docs/metrics.md) -----------------------------------
# Where every process of this host (web, worker, sweeper, beat) writes its metric values, so that a scrape of
# any web process sums them all. One directory per host; `manage.py preflight` (make run) empties it at start.
METRICS_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(BASE_DIR / ".metrics"))
# Who may scrape: clients from these networks (empty: any), with `Authorization: Bearer <METRICS_TOKEN>` if set.
METRICS_ALLOWED_NETWORKS = env.ip_networks("METRICS_ALLOWED_NETWORKS", default="127.0.0.0/8,::1")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
env.check(
    bool(METRICS_ALLOWED_NETWORKS or METRICS_TOKEN),
    "METRICS_ALLOWED_NETWORKS is empty (any network) and METRICS_TOKEN is not set: /metrics would be open to anyone",
)

# --- Delivery -------------------------------------------------------------------------------------------
# Seconds a client has to acknowledge a WebSocket send before the sweep retries it.
NOTIFY_ACK_TIMEOUT = env.float("NOTIFY_ACK_TIMEOUT", default=10, minimum=0.1)
# A connection counts as live for this long after its last heartbeat ...
NOTIFY_PRESENCE_TTL = env.float("NOTIFY_PRESENCE_TTL", default=60, minimum=1)
# ... and the hub refreshes it (and its group memberships) this often.
NOTIFY_PRESENCE_HEARTBEAT = env.float("NOTIFY_PRESENCE_HEARTBEAT", default=20, minimum=0.5)
env.check(
    NOTIFY_PRESENCE_HEARTBEAT < NOTIFY_PRESENCE_TTL,
    "NOTIFY_PRESENCE_HEARTBEAT must be shorter than NOTIFY_PRESENCE_TTL",
)
# A web process's connections count only while the process is alive: a thread of it refreshes its liveness
# key five times per this many seconds, so a killed process's users look offline (and are pushed) within it.
NOTIFY_PRESENCE_PROCESS_TTL = env.float("NOTIFY_PRESENCE_PROCESS_TTL", default=5, minimum=0.5)
# WebSocket sends (the first included) before an unacknowledged delivery falls back to FCM;
# the wait after the n-th send is NOTIFY_ACK_TIMEOUT * 2**(n-1).
NOTIFY_MAX_WS_ATTEMPTS = env.int("NOTIFY_MAX_WS_ATTEMPTS", default=3, minimum=1)
# Publishing answers 429 (Retry-After) while the furthest-behind web process is this many seconds behind
# (its event loop, its channel, its acks): a hub that cannot keep up is not given more.
NOTIFY_PUBLISH_MAX_BEHIND = env.float("NOTIFY_PUBLISH_MAX_BEHIND", default=10, minimum=0.5)
# Notifications one batch publish (POST /api/notifications/batch/) may hold; a longer list is a 400.
NOTIFY_PUBLISH_BATCH_MAX = env.int("NOTIFY_PUBLISH_BATCH_MAX", default=100, minimum=1)
# How often Celery beat runs the retry sweep, in seconds.
NOTIFY_SWEEP_INTERVAL = env.float("NOTIFY_SWEEP_INTERVAL", default=5, minimum=0.1)
# A delivery still pending this long after commit was lost by a dying process: the sweep re-dispatches it.
NOTIFY_DISPATCH_GRACE = env.float("NOTIFY_DISPATCH_GRACE", default=30, minimum=1)

# --- The FCM push fallback (notifications/push.py) ------------------------------------------------------
# FCM rounds per delivery before temporary errors (quota, unavailable, internal) fail it,
# and the first retry delay (doubled each round, with jitter; FCM's Retry-After wins if longer).
NOTIFY_MAX_PUSH_ATTEMPTS = env.int("NOTIFY_MAX_PUSH_ATTEMPTS", default=5, minimum=1)
NOTIFY_PUSH_RETRY_DELAY = env.float("NOTIFY_PUSH_RETRY_DELAY", default=10, minimum=0.1)
# How long a push task owns a delivery; the task is killed before then, so two never overlap.
NOTIFY_PUSH_LEASE = env.float("NOTIFY_PUSH_LEASE", default=90, minimum=2)
# Active devices (FCM tokens) a user may have: registering one more deactivates their least recently registered,
# so one account cannot make every push to it fan out to thousands of tokens.
NOTIFY_MAX_DEVICES_PER_USER = env.int("NOTIFY_MAX_DEVICES_PER_USER", default=10, minimum=1)
# Send only the notification id and event (the app fetches the rest over the API).
NOTIFY_PUSH_CONTENT_MINIMAL = env.bool("NOTIFY_PUSH_CONTENT_MINIMAL", default=False)
# Service-account JSON for FCM; GOOGLE_APPLICATION_CREDENTIALS (Application Default Credentials) also works.
FCM_CREDENTIALS_FILE = env.str("FCM_CREDENTIALS_FILE", default="")
GOOGLE_APPLICATION_CREDENTIALS = env.str("GOOGLE_APPLICATION_CREDENTIALS", default="")
# Seconds per FCM HTTP request (the SDK retries a timeout once and 500/503 four times).
FCM_TIMEOUT = env.float("FCM_TIMEOUT", default=10, minimum=0.1)
# fcm: Firebase Cloud Messaging; log: record pushes as simulated (the default without credentials).
NOTIFY_PUSH_BACKEND = env.choice(
    "NOTIFY_PUSH_BACKEND",
    choices=("fcm", "log"),
    default="fcm" if FCM_CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS else "log",
)
for _name, _path in (
    ("FCM_CREDENTIALS_FILE", FCM_CREDENTIALS_FILE),
    ("GOOGLE_APPLICATION_CREDENTIALS", GOOGLE_APPLICATION_CREDENTIALS),
):
    env.check(not _path or Path(_path).is_file(), f"{_name}={_path!r} is not a readable file")
env.check(
    NOTIFY_PUSH_BACKEND != "fcm" or bool(FCM_CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS),
    "NOTIFY_PUSH_BACKEND=fcm needs FCM_CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS",
)

# --- Action callbacks (notifications/services/action_callbacks.py) ----------------------------------------------
# Calls to a publisher's callback per performed action before it is given up (`failed`); the waits between
# them double from 1 s up to NOTIFY_ACTION_CALLBACK_MAX_BACKOFF seconds (jittered); seconds per call.
NOTIFY_ACTION_CALLBACK_MAX_ATTEMPTS = env.int("NOTIFY_ACTION_CALLBACK_MAX_ATTEMPTS", default=8, minimum=1)
NOTIFY_ACTION_CALLBACK_MAX_BACKOFF = env.int("NOTIFY_ACTION_CALLBACK_MAX_BACKOFF", default=600, minimum=1)
NOTIFY_ACTION_CALLBACK_TIMEOUT = env.float("NOTIFY_ACTION_CALLBACK_TIMEOUT", default=10, minimum=0.1)

# --- Retention (notifications/services/retention.py) -----------------------------------------------------------
# Days a settled delivery (and its attempt log) is kept after it last changed, and a notification after it was
# published once none of its deliveries is left; 0 keeps both forever. An open delivery is never deleted.
NOTIFY_RETENTION_DAYS = env.int("NOTIFY_RETENTION_DAYS", default=90, minimum=0)
# Hours an Idempotency-Key answers with what it published; after that the same key publishes anew.
NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS = env.int("NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS", default=24, minimum=1)
# How often Celery beat runs the pruner (on the sweep queue), in seconds.
NOTIFY_RETENTION_INTERVAL = env.float("NOTIFY_RETENTION_INTERVAL", default=60, minimum=0.1)
env.check(
    NOTIFY_RETENTION_DAYS == 0 or NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS <= NOTIFY_RETENTION_DAYS * 24,
    "NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS must not outlast NOTIFY_RETENTION_DAYS (a key answers with its notification)",
)

# --- Workflow: reminders and escalations of ignored tasks (workflow/services/escalation.py) ------------------
# How often Celery beat looks for tasks due a reminder or an escalation (on the sweep queue), in seconds. When
# they are due is each department's setting (admin: Departments), overridable per document; empty: never.
WORKFLOW_ESCALATION_INTERVAL = env.float("WORKFLOW_ESCALATION_INTERVAL", default=60, minimum=0.1)

# --- Real-time hub (WebSocket endpoints) ----------------------------------------------------------------
# Origins a browser handshake may come from: full origins (https://app.example.com) match exactly,
# host patterns (app.example.com, .example.com, *) match any scheme and port. No Origin header is allowed.
# Unset or empty: the ALLOWED_HOSTS patterns.
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=[]) or ALLOWED_HOSTS
# Messages per second a client may send on average, and the burst it may send at once; past it: close 1008.
WS_RATE_LIMIT = env.float("WS_RATE_LIMIT", default=10, minimum=0.1)
WS_RATE_BURST = env.int("WS_RATE_BURST", default=40, minimum=1)
# SignalR endpoint (docs/signalr.md), ASP.NET Core's defaults: a Ping after this many seconds without sending,
# a close after this many without hearing from the client (it pings every 15 s), and the handshake deadline.
SIGNALR_KEEPALIVE_INTERVAL = env.float("SIGNALR_KEEPALIVE_INTERVAL", default=15, minimum=0.1)
SIGNALR_CLIENT_TIMEOUT = env.float("SIGNALR_CLIENT_TIMEOUT", default=30, minimum=0.2)
SIGNALR_HANDSHAKE_TIMEOUT = env.float("SIGNALR_HANDSHAKE_TIMEOUT", default=15, minimum=0.1)
env.check(
    SIGNALR_CLIENT_TIMEOUT > SIGNALR_KEEPALIVE_INTERVAL,
    "SIGNALR_CLIENT_TIMEOUT must be longer than SIGNALR_KEEPALIVE_INTERVAL",
)

env.stop_if_invalid()

# =====================================================================================================
# 2. Django and the libraries
# =====================================================================================================

INSTALLED_APPS = [
    "daphne",
    "notifyhub.apps.NotifyHubAdminConfig",  # django.contrib.admin, its sign-in locked after failures
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "workflow",
    "notifications",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "core.api.middleware.ApiCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "notifyhub.urls"
ASGI_APPLICATION = "notifyhub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context_processors.header",
            ],
        },
    },
]

# Under ASGI every request may run in a different thread; persistent connections would leak.
DATABASES["default"]["CONN_MAX_AGE"] = 0

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The JavaScript client (docs/client.md) at /static/notifyhub/notifyhub.js: its src/ holds that module only.
STATICFILES_DIRS = [("notifyhub", BASE_DIR / "clients" / "js" / "src")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The web pages (web/): Django's session sign-in; the admin keeps its own sign-in page.
LOGIN_URL = "/sign-in/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/sign-in/"
CSRF_FAILURE_VIEW = "web.errors.csrf_failure"  # the pages' forms: "this page is out of date", not Django's page

# --- Channels -------------------------------------------------------------------------------------------
# redis-py 8 defaults socket_timeout to 5 s, the same as channels-redis's blocking read (an idle consumer's
# read would time out and be retried forever), and caps the async pool at 100 connections and raises past
# it (a burst of consumers would fail): no socket timeout, a pool sized for every connection. The layer's
# connections get no retries by default.
# Group members are web processes (notifications/hub/router.py), one channel each:
# - capacity: one process channel carries every message for that process, so a
#   burst must not fill it (a full channel drops group sends silently);
# - group_expiry: a live router re-joins its groups every 5 minutes, so a crashed
#   process's channel leaves the groups within 30 minutes.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": None,
                    "max_connections": 10_000,
                    # A pooled connection from before a Redis restart fails once; try again on a new one.
                    "retry": Retry(ExponentialBackoff(cap=0.5, base=0.01), 3),
                }
            ],
            "prefix": "notifyhub",
            "capacity": 100_000,
            "expiry": 60,
            "group_expiry": 1_800,
        },
    }
}

# --- CORS (django-cors-headers) --------------------------------------------------------------------------------
# Only the SignalR negotiate request needs it (browsers call it cross-origin with credentials); the API is for
# servers and same-origin pages. The rule is the hub's (WS_ALLOWED_ORIGINS), decided per request under /hubs/ by
# notifications.hub.signalr.negotiate.cors_request_allowed: so no URL is enabled by pattern, and no origin by list.
CORS_URLS_REGEX = r"(?!)"
CORS_ALLOWED_ORIGINS: list[str] = []
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOW_METHODS = ["POST", "OPTIONS"]
CORS_ALLOW_HEADERS = ["authorization", "x-requested-with", "x-signalr-user-agent"]  # what @microsoft/signalr sends
CORS_PREFLIGHT_MAX_AGE = 600

# --- Cache ----------------------------------------------------------------------------------------------
# Shared by every web process: API throttling counts requests here.
CACHES = {
    "default": {
        "BACKEND": "core.cache.RedisCache",  # Django's, reusing its redis-py client
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "notifyhub:cache",
    }
}

# --- REST framework, JWT and the OpenAPI schema ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES,
    # The client address is decided before Django (notifyhub/proxies.py), which removes X-Forwarded-For: REMOTE_ADDR.
    "NUM_PROXIES": 0,
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=JWT_ACCESS_TOKEN_LIFETIME),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=JWT_REFRESH_TOKEN_LIFETIME),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY or SECRET_KEY,
    "TOKEN_OBTAIN_SERIALIZER": "core.api.auth.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "core.api.auth.TokenRefreshSerializer",
    "TOKEN_VERIFY_SERIALIZER": "core.api.auth.TokenVerifySerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "NotifyHub API",
    "DESCRIPTION": (
        "Publish notifications, read an inbox, follow each delivery, and drive document approvals. "
        "Get a token at `POST /api/auth/token/` and send it as `Authorization: Bearer <access>`. "
        "Every error has the body `{code, message, fields?}`. Guide: docs/api.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": "notifications.models.Delivery.Status",
        "DocumentStatusEnum": "workflow.models.Document.Status",
        "ApprovalStepStatusEnum": "workflow.models.ApprovalStep.Status",
        "TaskStatusEnum": "workflow.models.Task.Status",
    },
}

# --- Celery ---------------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Redelivery after a worker crash: every task is idempotent, so a task whose worker died mid-run runs again
# rather than being lost (Celery acknowledges on receipt by default).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queueing a push after a publish commits happens in the request's thread: with Redis away (a restart) it must fail
# in about a second, not block the request and its slot for many; the rows are committed and the retry sweep queues
# their pushes again.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}
# The retry sweep has a queue of its own, served by the Procfile's `sweeper` line: behind a backlog of push
# tasks in the default queue it would wait its turn, and (with an expiry of one interval) be discarded every
# time, so resends, the recovery of stuck rows and expiry would all stop while pushes are backed up. The
# retention pruner shares it: its runs are short (a time budget), so a sweep waits for one at most that long.
# So does the escalation round (at most ROUND_LIMIT tasks per stage, each one short transaction).
SWEEP_QUEUE = "sweep"
CELERY_TASK_ROUTES = {
    "notifications.sweep_deliveries": {"queue": SWEEP_QUEUE},
    "notifications.prune_retention": {"queue": SWEEP_QUEUE},
    "workflow.escalate_overdue_tasks": {"queue": SWEEP_QUEUE},
    "notifications.resume_action_callbacks": {"queue": SWEEP_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "sweep-deliveries": {
        "task": "notifications.sweep_deliveries",
        "schedule": NOTIFY_SWEEP_INTERVAL,
        # Sweeps are idempotent and cheap when nothing is due: a sweeper that was down comes back to at most a
        # minute's worth of them, not to hours of queued runs; a late one still runs (never every one dropped).
        "options": {"queue": SWEEP_QUEUE, "expires": max(60.0, 10 * NOTIFY_SWEEP_INTERVAL)},
    },
    "prune-retention": {
        "task": "notifications.prune_retention",
        "schedule": NOTIFY_RETENTION_INTERVAL,
        # The same reasoning: a sweeper back from a long stop finds a run or two queued, not one per interval.
        "options": {"queue": SWEEP_QUEUE, "expires": max(60.0, 2 * NOTIFY_RETENTION_INTERVAL)},
    },
    "escalate-overdue-tasks": {
        "task": "workflow.escalate_overdue_tasks",
        "schedule": WORKFLOW_ESCALATION_INTERVAL,
        # Idempotent as the others (a task is reminded and escalated once, whatever the number of runs).
        "options": {"queue": SWEEP_QUEUE, "expires": max(60.0, 2 * WORKFLOW_ESCALATION_INTERVAL)},
    },
    # Publisher callbacks whose queued call was lost (notifications/services/action_callbacks.py).
    "resume-action-callbacks": {
        "task": "notifications.resume_action_callbacks",
        "schedule": 60.0,
        "options": {"queue": SWEEP_QUEUE, "expires": 120.0},
    },
}

# --- Prometheus client (core/metrics.py) -------------------------------------------------------------------
# prometheus-client takes its multiprocess directory from the environment when it is first imported, which
# core/metrics.py checks comes after this; processes started from this one (uvicorn's workers) inherit it.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR

# --- Logging --------------------------------------------------------------------------------------------
# One line per event in LOG_FORMAT, through the token scrubber (notifyhub/logging.py): browsers send the JWT as
# ?access_token=, and uvicorn logs WebSocket and HTTP paths with their query strings. uvicorn's loggers are routed
# here to be scrubbed too; daphne's access log goes through logging (daphne_patch), and Celery's workers and beat
# use this configuration too (notifyhub/celery.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "scrub_tokens": {"()": "notifyhub.logging.ScrubTokensFilter"},
        "periodic_tasks_quiet": {"()": "notifyhub.logging.PeriodicTasksFilter"},
        "client_errors_out": {"()": "notifyhub.logging.ClientErrorsFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["scrub_tokens", "periodic_tasks_quiet"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG only) printed each of its lines a second time: its records go to the
        # root handler like every other; its per-request 4xx lines are left to the server's access log.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.request": {"filters": ["client_errors_out"]},
        "django.db.backends": {"level": "INFO"},
        "uvicorn": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# =====================================================================================================
# 3. What differs by kind of process
# =====================================================================================================

# A PostgreSQL connection pool, in the web (ASGI) processes only: `notifyhub/asgi.py` marks the process
# (`notifyhub.process`) before Django starts. Opening a connection costs ~3.5 ms against ~0.06 ms per hub
# query (docs/performance.md), and closing a pooled connection (what `close_old_connections` does after every
# hub call) returns it to the pool. Celery's prefork workers, beat and manage.py never get one: a pool
# opened before a fork would share its sockets with the children. Each of uvicorn's WEB_CONCURRENCY
# workers is spawned, not forked, and opens its own pool: up to WEB_CONCURRENCY x max_size connections.
if process.is_web_process() and DATABASE_POOL_MAX_SIZE > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(4, DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": 10,  # seconds to wait for a free connection before the call fails
    }
    # The pool checks each connection as it hands it out, and drops every dead one at the first it meets
    # (notifyhub/postgresql): after a PostgreSQL restart (or terminated backends) every pooled connection
    # is dead, and each would otherwise fail one request, connect or ack.
    DATABASES["default"]["ENGINE"] = "notifyhub.postgresql"
