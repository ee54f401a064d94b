"""How far behind this process's hub is, in seconds: what the retry sweep and publishing ask before adding work.

Three places fill up when a process cannot keep up (a reconnect storm after a restart, a burst of publishes):

- its event loop: callbacks run late (`record_loop_lag`, measured by the presence heartbeat every tick);
- its channel-layer channel: messages wait in Redis for the router (the router's self-ping round trip);
- its ack batcher: acks wait for their database write (`AckBatcher.oldest_wait_seconds`).

`process_behind_seconds()` is the largest of them. The process's liveness thread publishes it with its
liveness key (`presence.ProcessLiveness`) about once a second; `presence.hub_behind_seconds()` reads the
furthest-behind live process. Everything here is a plain float, written on the event loop and read from the
liveness thread.
"""

import time
import weakref
from collections.abc import Callable

# The event loop's lag as last measured, and when.
_loop_lag = 0.0
_loop_lag_at = 0.0
# A lag reading this old says nothing any more (the heartbeat stops when the process has no connection).
LOOP_LAG_VALID_SECONDS = 10.0

_ack_backlogs: "weakref.WeakSet" = weakref.WeakSet()  # the processes' AckBatchers (one per event loop)
_layer_backlogs: list[Callable[[], float]] = []  # e.g. the router's round trip


def record_loop_lag(seconds: float) -> None:
    """A timer due now ran `seconds` late (the presence heartbeat measures it every tick)."""
    global _loop_lag, _loop_lag_at
    _loop_lag, _loop_lag_at = max(seconds, 0.0), time.monotonic()


def watch_ack_backlog(batcher) -> None:
    """Count `batcher.oldest_wait_seconds()` in (an AckBatcher, on creation)."""
    _ack_backlogs.add(batcher)


def watch_layer_backlog(measure: Callable[[], float]) -> None:
    if measure not in _layer_backlogs:
        _layer_backlogs.append(measure)


def process_behind_seconds() -> float:
    loop_lag = _loop_lag if time.monotonic() - _loop_lag_at < LOOP_LAG_VALID_SECONDS else 0.0
    acks = max((batcher.oldest_wait_seconds() for batcher in list(_ack_backlogs)), default=0.0)
    layer = max((measure() for measure in _layer_backlogs), default=0.0)
    return max(loop_lag, acks, layer)
