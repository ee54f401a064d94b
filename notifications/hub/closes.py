"""Why the server ends a hub connection: the WebSocket close codes and reasons, in one place (docs/protocol.md)."""

from dataclasses import dataclass

# Frames larger than this end the connection with 1009 (daphne's own limit is 1 MiB).
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class CloseReason:
    """Why the server ends a connection: a WebSocket close code and a short reason for the client."""

    code: int
    reason: str
    error_code: str  # the code of the error frame sent just before closing (some clients never see reasons)

    @classmethod
    def unauthorized(cls, reason: str) -> "CloseReason":
        return cls(4401, reason, "unauthorized")


TOKEN_EXPIRED = CloseReason.unauthorized("token expired")
# The same words as a refusal at connect (auth.identity_for_token): the user was deactivated while connected.
USER_INACTIVE = CloseReason.unauthorized("user unknown or inactive")
MESSAGE_TOO_BIG = CloseReason(1009, f"message larger than {MAX_MESSAGE_BYTES} bytes", "message_too_big")
FLOODING = CloseReason(1008, "too many messages", "rate_limited")
# The connection fell behind by OUTBOX_LIMIT messages (the client reads too slowly): it reconnects and replays.
TOO_SLOW = CloseReason(1013, "too slow to keep up", "too_slow")
# The server process is stopping (a deploy or restart, see notifyhub/shutdown.py): 1012 "service restart" tells
# clients to reconnect, and another process (or this one, restarted) answers and replays what they missed.
SERVER_SHUTDOWN = CloseReason(1012, "server restarting", "server_shutdown")
# Redis or the database failed the session's start (a restart under way): reconnect with backoff, it will work.
TRY_AGAIN_LATER = CloseReason(1013, "try again later", "unavailable")
# Anything else failed it (a bug, logged): reconnect with backoff.
SERVER_ERROR = CloseReason(1011, "server error; reconnect", "internal_error")
