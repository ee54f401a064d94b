"""Two fixes to daphne 4.2: close codes and reasons, and a clean shutdown.

**Close codes.** Let an application close a daphne WebSocket with any close code and reason the ASGI spec allows.

daphne 4.2 drops the `reason` of `websocket.close` (django/daphne#374) and
hands the code to autobahn's `sendClose`, which refuses everything but 1000
and 3000-4999. The hub must close with 1008 (policy violation: flooding) and
1009 (message too big), and its 4401 should carry a reason. This replaces
daphne's handling of that one message with autobahn's lower-level
`sendCloseFrame`, which sends exactly what was asked; codes RFC 6455 forbids
on the wire are still passed to daphne unchanged. uvicorn needs nothing: it
supports both already.

**Shutdown.** On SIGTERM daphne cancels every application instance and waits
for them, which is when the hub tells its clients to reconnect elsewhere
(`HubConsumer.__call__`). But its `kill_all_applications` raises `KeyError` on
the first connection that has no application running (an idle keep-alive
HTTP connection, a socket whose application has finished), and then cancels
nothing: every socket is just dropped. The replacement skips those.

Installed by `notifyhub.asgi`; `tests/test_daphne_patch.py` fails if a
daphne upgrade moves what this relies on.
"""

import asyncio
import logging

from autobahn.util import encode_truncate
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer

logger = logging.getLogger("daphne.server")

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


def _kill_all_applications(self: Server) -> defer.Deferred:
    """Cancel every running application instance before the reactor stops, and make it wait for them."""
    running = [
        details["application_instance"]
        for details in self.connections.values()
        if details.get("application_instance") is not None and not details["application_instance"].done()
    ]
    for application_instance in running:
        application_instance.cancel()
    logger.info("Killed %i pending application instances", len(running))
    waiting = defer.Deferred.fromFuture(asyncio.gather(*running))
    waiting.addErrback(lambda failure: None)
    return waiting


def install() -> None:
    """Patch daphne's WebSocket protocol and shutdown (idempotent)."""
    WebSocketProtocol.handle_reply = _handle_reply
    Server.kill_all_applications = _kill_all_applications
