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

**Shutdown.** On SIGTERM daphne cancels every application instance at once
(its reactor's before-shutdown trigger, `kill_all_applications`) and stops:
in-flight HTTP requests are dropped without an answer; and it raises
`KeyError` on a connection with no application running (an idle keep-alive
HTTP connection), cancelling nothing. The replacement runs the steps of
`notifyhub.shutdown` instead: stop listening, let HTTP requests finish within
their grace while every hub connection says goodbye, then cancel what still
runs; the reactor waits for it.

**Access log.** daphne writes it to stdout itself, past logging: it goes through logging instead
(`notifyhub.logging.log_daphne_access`), scrubbed and in LOG_FORMAT like every other line.

Installed by `notifyhub.asgi`; `tests/notifyhub/test_daphne_patch.py` fails if a
daphne upgrade moves what this relies on.
"""

import asyncio
import logging

from autobahn.util import encode_truncate
from daphne.access import AccessLogGenerator
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer

from notifications.hub.consumer import hub_connections_shut_down
from notifyhub import shutdown
from notifyhub.logging import log_daphne_access

logger = logging.getLogger("daphne.server")

# Applications cancelled at the end of the shutdown get this long to finish (an HTTP request answers 503).
CANCELLED_GRACE_SECONDS = 1.0

# RFC 6455 §7.4: codes an endpoint may send in a close frame.
SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}) | frozenset(
    range(3000, 5000)
)
MAX_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code

_daphne_handle_reply = WebSocketProtocol.handle_reply
_daphne_listen_success = Server.listen_success


def _handle_reply(self: WebSocketProtocol, message: dict) -> None:
    if message.get("type") == "websocket.close" and self.state == self.STATE_OPEN:
        code = message.get("code") or 1000
        if code in SENDABLE_CLOSE_CODES:
            reason = message.get("reason") or ""
            self.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, MAX_REASON_BYTES) or None)
            return
    _daphne_handle_reply(self, message)


def _listen_success(self: Server, port) -> None:
    """Keep the listening port (daphne keeps only its address), so that shutdown can close it."""
    self.__dict__.setdefault("notifyhub_ports", []).append(port)
    _daphne_listen_success(self, port)


def _kill_all_applications(self: Server) -> defer.Deferred:
    """The reactor's before-shutdown trigger (SIGTERM): `notifyhub.shutdown`'s steps; the reactor waits for them."""
    began_at = shutdown.begin()
    for port in self.__dict__.get("notifyhub_ports", []):
        port.stopListening()
    waiting = defer.Deferred.fromFuture(asyncio.ensure_future(_drain(self, began_at)))
    waiting.addErrback(lambda failure: logger.error("shutdown failed: %s", failure.getTraceback()))
    return waiting


async def _drain(server: Server, began_at: float) -> None:
    await asyncio.gather(
        hub_connections_shut_down(),
        _applications_finished(server, seconds=shutdown.HTTP_GRACE_SECONDS, began_at=began_at),
    )
    # What still runs now: HTTP requests past their grace (http.py answers them 503), sockets that did not close.
    running = _running_applications(server)
    for application_instance in running:
        application_instance.cancel()
    logger.info("Killed %i pending application instances", len(running))
    if running:
        await asyncio.wait(running, timeout=CANCELLED_GRACE_SECONDS)


async def _applications_finished(server: Server, *, seconds: float, began_at: float) -> None:
    """Returns once no application instance runs (HTTP answered, sockets closed), or after `seconds` from `began_at`.

    Looks again after each wait: a keep-alive HTTP connection may bring one more request meanwhile.
    """
    while (running := _running_applications(server)) and (left := shutdown.seconds_left(began_at, seconds)) > 0:
        await asyncio.wait(running, timeout=left, return_when=asyncio.FIRST_COMPLETED)


def _running_applications(server: Server) -> list[asyncio.Future]:
    return [
        details["application_instance"]
        for details in list(server.connections.values())
        if details.get("application_instance") is not None and not details["application_instance"].done()
    ]


def install() -> None:
    """Patch daphne's WebSocket protocol, shutdown and access log (idempotent)."""
    AccessLogGenerator.write_entry = log_daphne_access
    WebSocketProtocol.handle_reply = _handle_reply
    Server.listen_success = _listen_success
    Server.kill_all_applications = _kill_all_applications
