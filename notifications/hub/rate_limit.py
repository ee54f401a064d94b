"""The flood guard of one hub connection: how many frames (or SignalR records) its client may send."""

import time

# Acknowledgements a client may still owe beyond the rate limit (one per notification sent; see MessageRateLimit).
MAX_GRANTED_MESSAGES = 2_000


class MessageRateLimit:
    """Token bucket: `burst` messages at once, refilled at `rate` per second, plus the `granted` answers.

    A client acknowledges every notification it is sent, so each one sent
    grants one message: acknowledging a replay of hundreds at once (as clients
    that ack in their event handler do) is not flooding.
    """

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.granted = 0
        self.updated = time.monotonic()

    def grant(self) -> None:
        """Allow one more message, beyond the rate: the answer to a notification just sent."""
        self.granted = min(self.granted + 1, MAX_GRANTED_MESSAGES)

    def admit(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        if self.granted:
            self.granted -= 1
            return True
        return False
