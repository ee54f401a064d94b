"""The types of the frames the native protocol sends (docs/protocol.md, "Server → client"), named once.

native.py builds its frames with them; API publishers may not use them as event names (notifications/reserved.py),
so a client that handles frames and events in one table never mistakes a publisher's notification for a frame.
"""

from enum import StrEnum


class ServerFrame(StrEnum):
    HELLO = "hello"
    NOTIFICATION = "notification"
    REPLAY_COMPLETE = "replay_complete"
    ACKED = "acked"
    READ = "read"
    RESOLVED = "resolved"
    UNREAD_COUNT = "unread_count"
    ACTION_RESULT = "action_result"
    PONG = "pong"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PRESENCE = "presence"
    TYPING = "typing"
    ERROR = "error"
