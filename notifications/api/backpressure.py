"""Publishing waits while the hub is too far behind to deliver what it has: 429 with Retry-After.

A publish is persisted first, so accepting one never loses it; but while a web process is behind (a reconnect
storm after a restart, a burst) every publish adds frames to write and acks to read, and a hub that cannot
catch up only falls further behind (acks then arrived after their resends, every delivery was sent
three times, and the hub never recovered). So above NOTIFY_PUBLISH_MAX_BEHIND seconds of lag (the
furthest-behind live process, `presence.hub_behind_seconds`) publishers are asked to come back later.
"""

import logging
import math
import threading
import time

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from notifications import presence

logger = logging.getLogger(__name__)

# The lag is read from Redis at most this often per process (it is published about once a second anyway).
READ_EVERY_SECONDS = 1.0
RETRY_AFTER_MAX_SECONDS = 30


class _BehindReading:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds = 0.0
        self._read_at = -math.inf

    def seconds(self) -> float:
        now = time.monotonic()
        if now - self._read_at >= READ_EVERY_SECONDS:
            with self._lock:
                if now - self._read_at >= READ_EVERY_SECONDS:
                    try:
                        self._seconds = presence.hub_behind_seconds()
                    except redis.RedisError:  # presence unreachable: publishing goes on (rows start pending)
                        self._seconds = 0.0
                    self._read_at = now
        return self._seconds


_behind = _BehindReading()


class HubBackpressureThrottle(BaseThrottle):
    """Refuses publishing (429, Retry-After) while the hub is more than NOTIFY_PUBLISH_MAX_BEHIND seconds behind."""

    def allow_request(self, request, view) -> bool:
        self._behind = _behind.seconds()
        if self._behind <= settings.NOTIFY_PUBLISH_MAX_BEHIND:
            return True
        logger.warning("publish refused: the hub is %.1f s behind", self._behind)
        return False

    def wait(self) -> float:
        return min(max(self._behind - settings.NOTIFY_PUBLISH_MAX_BEHIND, 1.0), RETRY_AFTER_MAX_SECONDS)
