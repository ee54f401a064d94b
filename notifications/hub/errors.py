"""What the hub answers a client request it refuses, whatever the protocol renders it as."""


class HubError(Exception):
    """A client request the hub refuses; the connection stays open and nothing was changed."""

    INVALID = "invalid"  # a field is missing or malformed
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    NOT_SUBSCRIBED = "not_subscribed"
    RATE_LIMITED = "rate_limited"
    LIMIT_EXCEEDED = "limit_exceeded"
    INTERNAL = "internal_error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
