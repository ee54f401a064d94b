"""uvicorn's shutdown, run in the order of `notifyhub.shutdown`; and its WebSocket handshake request let go.

On SIGTERM uvicorn (0.5x) closes its listening sockets, then closes every
WebSocket itself with a bare 1012 (no reason, and no goodbye from the hub:
the native error frame and SignalR's Close message never went out), lets
in-flight HTTP requests finish with no time limit unless
`--timeout-graceful-shutdown` was given, and then cancels what still runs.
The replacement first stops listening and lets the hub say goodbye to every
connection, then gives uvicorn's own shutdown what is left of the HTTP grace,
and last takes the process's live gauges out of /metrics (core/metrics.py).

The WebSocket handshake's request stays in memory for as long as the connection lives, though nothing reads it
after the handshake: uvicorn (0.54) keeps it as `request`, and websockets' parser (17.4) as a local of the
generator that goes on to parse frames. Its headers are ~2 KiB on every idle connection (docs/performance.md,
"Memory per idle connection"); once uvicorn has copied them into the scope the application gets, they are
emptied, and uvicorn's reference dropped.

Installed by `notifyhub.asgi` (uvicorn imports the application before it
shuts down, in every worker process); `tests/notifyhub/test_uvicorn_patch.py` fails if
a uvicorn upgrade moves what this relies on.
"""

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import Server
from websockets.http11 import Request

from core import metrics
from notifications.hub.consumer import hub_connections_shut_down
from notifyhub import shutdown

_uvicorn_shutdown = Server.shutdown
_uvicorn_handle_connect = WebSocketsSansIOProtocol.handle_connect


async def _shutdown(self: Server, sockets=None) -> None:
    """Runs when uvicorn's main loop has seen the signal: `notifyhub.shutdown`'s steps, then uvicorn's own."""
    began_at = shutdown.begin()
    for server in self.servers:  # uvicorn closes them too; first, so that no client reconnects to this process
        server.close()
    await hub_connections_shut_down()
    if self.config.timeout_graceful_shutdown is None:
        # At least a moment: uvicorn's wait returns at once when nothing runs, and cancels (HTTP answers 503) after.
        # uvicorn annotates it as an int; it waits with asyncio, which takes any number of seconds.
        self.config.timeout_graceful_shutdown = max(  # type: ignore[assignment]
            shutdown.seconds_left(began_at, shutdown.HTTP_GRACE_SECONDS), 0.1
        )
    await _uvicorn_shutdown(self, sockets=sockets)
    # uvicorn then ends the process by raising the signal again: no exit handler runs to do this.
    metrics.forget_this_process()


def _handle_connect(self: WebSocketsSansIOProtocol, event: Request) -> None:
    """uvicorn's handshake (the scope built with its own copy of the headers, the response prepared, the
    application started), then the request's headers emptied and the request let go: read by nothing from here
    on, but referenced by the parser until the connection ends."""
    _uvicorn_handle_connect(self, event)
    event.headers.clear()
    self.request = None  # type: ignore[assignment]


def install() -> None:
    """Patch uvicorn's `Server.shutdown` and its WebSocket handshake (idempotent)."""
    Server.shutdown = _shutdown  # type: ignore[method-assign]  # the patch itself
    WebSocketsSansIOProtocol.handle_connect = _handle_connect  # type: ignore[method-assign]
