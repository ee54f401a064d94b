"""What the driver, the servers and the client swarms agree on: the timing stamp and the bare server's channels.

Every benchmark notification carries `data["bench"] = {"phase", "seq", "t"}`:
the phase it belongs to (frames from other phases are counted as strays, never
as results), its sequence number within the phase, and the wall-clock time
(`time.time()`, one clock for every process on this machine) at which the
publisher sent it. A client's latency is its receive time minus `t`.
"""

import json
import time
import uuid
from datetime import UTC, datetime

STAMP_KEY = "bench"
# The bare server psubscribes to `<prefix>*`; a channel is a user or a department, like the hub's groups.
# (Redis pub/sub channels ignore the database number: a run on another prefix never hears this one.)
BARE_CHANNEL_PREFIX = "bench.bare."


def stamp(*, phase: str, seq: int) -> dict:
    """A fresh stamp; call it as late as possible before the send."""
    return {"phase": phase, "seq": seq, "t": time.time()}


def bare_user_channel(user_id: int, prefix: str = BARE_CHANNEL_PREFIX) -> str:
    return f"{prefix}user.{int(user_id)}"


def bare_department_channel(department_id: int, prefix: str = BARE_CHANNEL_PREFIX) -> str:
    return f"{prefix}dept.{int(department_id)}"


def notification_body(*, event: str, seq: int) -> dict:
    """Title, body and event of a benchmark notification (the same bytes for the hub and the bare server)."""
    return {"event": event, "title": f"Benchmark notification {seq}", "body": "Measured by make bench."}


def bare_notification_frame(*, event: str, phase: str, seq: int) -> str:
    """The frame the bare server forwards verbatim: the hub's notification frame, built by the publisher."""
    return json.dumps(
        {
            "type": "notification",
            "id": str(uuid.uuid4()),
            **notification_body(event=event, seq=seq),
            "data": {STAMP_KEY: stamp(phase=phase, seq=seq)},
            "document_id": None,
            "priority": "normal",
            "created_at": datetime.now(UTC).isoformat(),
        }
    )
