"""Let an application close a daphne WebSocket with any close code and reason the ASGI spec allows.

daphne 4.2 drops the `reason` of `websocket.close` (django/daphne#374) and
hands the code to autobahn's `sendClose`, which refuses everything but 1000
and 3000-4999. The hub must close with 1008 (policy violation: flooding) and
1009 (message too big), and its 4401 should carry a reason. This replaces
daphne's handling of that one message with autobahn's lower-level
`sendCloseFrame`, which sends exactly what was asked; codes RFC 6455 forbids
on the wire are still passed to daphne unchanged. uvicorn needs nothing: it
supports both already.

Installed by `notifyhub.asgi`; `tests/test_daphne_patch.py` fails if a
daphne upgrade moves what this relies on.
"""

from autobahn.util import encode_truncate
from daphne.ws_protocol import WebSocketProtocol

# RFC 6455 §7.4: codes an endpoint may send in a close frame.
SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}) | frozenset(
    range(3000, 5000)
)
MAX_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code

_daphne_handle_reply = WebSocketProtocol.handle_reply


def _handle_reply(self: WebSocketProtocol, message: dict) -> None:
    if message.get("type") == "websocket.close" and self.state == self.STATE_OPEN:
        code = message.get("code") or 1000
        if code in SENDABLE_CLOSE_CODES:
            reason = message.get("reason") or ""
            self.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, MAX_REASON_BYTES) or None)
            return
    _daphne_handle_reply(self, message)


def install() -> None:
    """Patch daphne's WebSocket protocol (idempotent)."""
    WebSocketProtocol.handle_reply = _handle_reply
