"""Read the real Celery broker queue (Redis) in tests where no worker consumes it."""

import base64
import json

PUSH_TASK = "notifications.push_delivery"


def queued_push_delivery_ids(redis_client) -> list[int]:
    """Delivery ids of the push tasks waiting in the default Celery queue, sorted."""
    delivery_ids = []
    for raw in redis_client.lrange("celery", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == PUSH_TASK:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            delivery_ids.append(args[0])
    return sorted(delivery_ids)
