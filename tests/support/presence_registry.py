"""The presence registry (notifications/presence.py) as a running system has it."""

import redis

from notifications import presence


def settle_presence_registry(client: redis.Redis) -> None:
    """Mark the (just emptied) presence registry as long established, as in a running system.

    An empty registry is otherwise a Redis that has just restarted: presence lookups say it is incomplete for
    a while and pushes wait (see notifications/presence.py). Tests about that restart make their own.
    """
    client.set(presence.SINCE_KEY, 0)
