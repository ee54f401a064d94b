"""One log line per event, none when idle, and never a credential.

- `ScrubTokensFilter`: browsers cannot set headers on a WebSocket handshake, so they send the JWT as
  `?access_token=...`; uvicorn's access log, Django's request log and proxies would write it down. Installed on
  every handler in settings, it rewrites a record's message before it is formatted (plain or JSON).
- `ClientErrorsFilter`: Django logs every 4xx answer ("Not Found: /api/x/") although the server's access log
  already has a line for that request; 5xx (with their traceback) still pass.
- `PeriodicTasksFilter`: Celery logs three lines per beat run of a task (sent, received, succeeded); for the
  periodic maintenance tasks (every few seconds, mostly with nothing to do) those are dropped: the tasks log one
  line of their own when they did something.
- `log_daphne_access`: daphne writes its access log straight to stdout; it goes through logging here, so it is
  scrubbed and formatted (LOG_FORMAT) like every other line.
"""

import logging
import re
from typing import Any

REDACTED = "[redacted]"
# access_token=... in query strings (also URL-encoded inside a logged URL), and Bearer credentials.
_SECRETS = re.compile(
    r"(?P<key>(?:access_token|refresh_token|token)(?:=|%3D))[^&\s\"'#]+"
    r"|(?P<scheme>Bearer\s+)[A-Za-z0-9._~+/=-]+",
    re.IGNORECASE,
)


def scrub_tokens(text: str) -> str:
    """`text` with token values replaced by a marker."""
    return _SECRETS.sub(lambda match: (match.group("key") or match.group("scheme")) + REDACTED, text)


class ScrubTokensFilter(logging.Filter):
    """A handler filter that redacts tokens from the formatted message (never drops the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_tokens(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class ClientErrorsFilter(logging.Filter):
    """A filter for `django.request`: drops the records of 4xx answers (the access log has the request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", 500) >= 500


# Celery's per-run lines: beat sending, the worker receiving, the task succeeding.
CELERY_RUN_LOGGERS = frozenset({"celery.beat", "celery.worker.strategy", "celery.app.trace"})


class PeriodicTasksFilter(logging.Filter):
    """A handler filter that drops Celery's routine per-run lines of the tasks in CELERY_BEAT_SCHEDULE."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name not in CELERY_RUN_LOGGERS or record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(task in message for task in _periodic_task_names())


def _periodic_task_names() -> frozenset[str]:
    from django.conf import settings

    return frozenset(entry["task"] for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values())


ACCESS_LOGGER = logging.getLogger("daphne.access")


def log_daphne_access(
    self: Any, host: str, date: Any, request: str, status: Any = None, length: Any = None, **_: Any
) -> None:
    """daphne's AccessLogGenerator.write_entry, through logging (one line per request or connection event)."""
    if request.startswith("WSCONNECTING "):
        return  # WSCONNECT (or WSREJECT) follows for the same connection
    ACCESS_LOGGER.info('%s "%s" %s %s', host, request, status or "-", length or "-")
