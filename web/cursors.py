"""The inbox's opaque `?cursor=`: a direction and a position in reading order, base64 so nobody edits it by hand.

A cursor that does not decode is no cursor (the first page), never an error.
"""

import base64
import binascii
from datetime import datetime

from notifications.selectors import InboxPosition

OLDER, NEWER = "o", "n"
MAX_BIGINT = 2**63  # a delivery id beyond would fail in PostgreSQL, not match nothing


def encode_cursor(direction: str, position: InboxPosition) -> str:
    raw = f"{direction}|{int(position.read)}|{position.created_at.isoformat()}|{position.delivery_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, InboxPosition] | None:
    """(direction, position), or None for anything that is not a cursor this module made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, read, created_at, delivery_id = raw.split("|")
        position = InboxPosition(
            read=bool(int(read)), created_at=datetime.fromisoformat(created_at), delivery_id=int(delivery_id)
        )
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if (
        direction not in (OLDER, NEWER)
        or read not in ("0", "1")
        or position.created_at.tzinfo is None
        or not 0 < position.delivery_id < MAX_BIGINT
    ):
        return None
    return direction, position
