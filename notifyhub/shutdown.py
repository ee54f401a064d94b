"""What the web process does on SIGTERM, under daphne and uvicorn alike.

1. It stops accepting connections (the server closes its listening sockets).
2. In-flight HTTP requests have until `HTTP_GRACE_SECONDS` after the signal to
   finish; one still running then is cancelled and answered 503 (`notifyhub/http.py`),
   never dropped without an answer.
3. Meanwhile every hub connection is told to reconnect (native: an `error`
   frame and close 1012; SignalR: a Close message with `allowReconnect`) and
   its session is closed, within `SHUTDOWN_GRACE_SECONDS`
   (`notifications.hub.consumer.hub_connections_shut_down`).
4. The process exits. `begin()` also starts a watchdog that ends the process
   `EXIT_DEADLINE_SECONDS` after the signal whatever still runs, and logs that
   it had to: a deploy never needs SIGKILL.

Why: a request thread publishing after its commit used to wait for the
server's event loop after the server had stopped it, and the process never
exited (its sends now run on `notifications.layer`' own loop, bounded). The
listening sockets close first so that clients told to reconnect reach another
process, not this one.

Each server's glue runs these steps: `daphne_patch.py` from the reactor's
before-shutdown trigger, `uvicorn_patch.py` from `Server.shutdown` (before
uvicorn's own, which would close every socket with a bare 1012).
"""

import contextlib
import logging
import os
import sys
import threading
import time

from core import metrics

logger = logging.getLogger(__name__)

# In-flight HTTP requests get this long after SIGTERM to finish.
HTTP_GRACE_SECONDS = 5.0
# The last resort: the process is gone this long after SIGTERM, whatever still runs. Past both graces (HTTP's
# and the hub's SHUTDOWN_GRACE_SECONDS, which run side by side), with time to spare for the exit itself.
EXIT_DEADLINE_SECONDS = 10.0
DEADLINE_EXIT_CODE = 124  # as timeout(1): "it took too long"
DEADLINE_LOG_LINE = "exit deadline reached"

_lock = threading.Lock()
_began_at: float | None = None


def begin() -> float:
    """When the server starts to shut down: start the exit deadline; returns when shutdown began (time.monotonic()).

    Idempotent: a second call (a second signal) keeps the first time and deadline.
    """
    global _began_at
    with _lock:
        if _began_at is None:
            _began_at = time.monotonic()
            logger.info("shutdown: began; the process exits within %g s", EXIT_DEADLINE_SECONDS)
        began_at = _began_at
    exit_deadline_start(EXIT_DEADLINE_SECONDS - (time.monotonic() - began_at))
    return began_at


def seconds_left(began_at: float, grace: float) -> float:
    """What is left of `grace` seconds counted from `began_at`."""
    return max(0.0, began_at + grace - time.monotonic())


_deadline: threading.Thread | None = None


def exit_deadline_start(seconds: float) -> None:
    """Make sure the process is gone `seconds` from now, whatever still runs (the first deadline set holds)."""
    global _deadline
    with _lock:
        if _deadline is not None:
            return
        _deadline = threading.Thread(target=_exit_at_deadline, args=(seconds,), name="exit-deadline", daemon=True)
        _deadline.start()


def _exit_at_deadline(seconds: float) -> None:
    time.sleep(seconds)
    # The threads still running say what the shutdown waited for (e.g. a request thread blocked on something).
    running = sorted(
        thread.name for thread in threading.enumerate() if not thread.daemon and thread is not threading.main_thread()
    )
    logger.error(
        "shutdown: %s (%g s); threads still running: %s; exiting now",
        DEADLINE_LOG_LINE,
        seconds,
        ", ".join(running) or "none but the main thread",
    )
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # exiting regardless
            stream.flush()
    with contextlib.suppress(Exception):  # os._exit runs no exit handler: the one that keeps /metrics true, here
        metrics.forget_this_process()
    os._exit(DEADLINE_EXIT_CODE)
