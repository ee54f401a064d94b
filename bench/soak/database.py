"""What the soak reads from its database at the end: whether every delivery settled, and how.

Plain SQL over a fresh psycopg connection each time, never Django's: chaos
step `pg` terminates every other backend, and the driver must not be one of them
mid-query.
"""

import asyncio
import time
from dataclasses import dataclass

import psycopg

OPEN_STATUSES = ("pending", "sent")


@dataclass(frozen=True)
class DeliveryRow:
    seq: int
    recipient_id: int
    notification_id: str
    status: str
    failure_reason: str
    acknowledged: bool  # a client acknowledged it (possibly after it had settled otherwise)


def open_delivery_count(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        return connection.execute(
            "SELECT count(*) FROM notifications_delivery WHERE status = ANY(%s)", [list(OPEN_STATUSES)]
        ).fetchone()[0]


async def wait_until_settled(database_url: str, *, bound: float, progress) -> tuple[bool, float]:
    """Poll until no delivery is pending or sent, for at most `bound` seconds; returns (settled, seconds waited)."""
    started = time.monotonic()
    while True:
        try:
            remaining = await asyncio.to_thread(open_delivery_count, database_url)
        except psycopg.OperationalError as error:
            progress(f"settling: database unreachable ({error})")
            remaining = -1
        waited = time.monotonic() - started
        if remaining == 0:
            return True, waited
        if waited > bound:
            return False, waited
        progress(f"settling: {remaining:,} deliveries open, {waited:.0f}/{bound:.0f} s")
        await asyncio.sleep(1)


def delivery_rows(database_url: str) -> list[DeliveryRow]:
    """Every delivery of a soak notification (the database held nothing else at the start)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            """
            SELECT (n.data -> 'soak' ->> 'seq')::int, d.recipient_id, n.id::text, d.status, d.failure_reason,
                   d.acknowledged_at IS NOT NULL
            FROM notifications_delivery d JOIN notifications_notification n ON n.id = d.notification_id
            WHERE n.data ? 'soak'
            """
        ).fetchall()
    return [DeliveryRow(*row) for row in rows]


def notifications_per_seq(database_url: str) -> dict[int, list[str]]:
    """Notification ids per publish sequence number (more than one: a retried publish was published twice)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT (data -> 'soak' ->> 'seq')::int, id::text FROM notifications_notification WHERE data ? 'soak'"
        ).fetchall()
    per_seq: dict[int, list[str]] = {}
    for seq, notification_id in rows:
        per_seq.setdefault(seq, []).append(notification_id)
    return per_seq
