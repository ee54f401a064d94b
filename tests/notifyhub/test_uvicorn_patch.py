"""Canary for notifyhub.uvicorn_patch: fails loudly if a uvicorn upgrade moves what it relies on.

The behaviour itself (the hub's goodbye before uvicorn's, in-flight requests
answered, a prompt exit) is covered end to end in tests/notifyhub/test_shutdown.py.
"""

import asyncio
import gc
import inspect

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import Server, ServerState
from websockets.http11 import Request
from websockets.server import ServerProtocol

from notifyhub import uvicorn_patch


def test_uvicorn_still_shuts_down_from_one_method_that_stops_listening_and_honours_a_graceful_timeout():
    assert "await self.shutdown(sockets=sockets)" in inspect.getsource(Server._serve)
    source = inspect.getsource(uvicorn_patch._uvicorn_shutdown)
    assert "for server in self.servers:" in source
    assert "connection.shutdown()" in source
    assert "timeout=self.config.timeout_graceful_shutdown" in source


def test_uvicorn_still_closes_open_websockets_itself_which_is_why_the_hub_goes_first():
    source = inspect.getsource(WebSocketsSansIOProtocol.shutdown)
    assert "if self.close_sent:" in source
    assert "send_close(1012)" in source


def test_install_is_what_the_asgi_application_runs():
    import notifyhub.asgi  # noqa: F401  (importing it installs the patch)

    assert Server.shutdown is uvicorn_patch._shutdown
    assert WebSocketsSansIOProtocol.handle_connect is uvicorn_patch._handle_connect
    uvicorn_patch.install()
    assert Server.shutdown is uvicorn_patch._shutdown
    assert WebSocketsSansIOProtocol.handle_connect is uvicorn_patch._handle_connect


def test_uvicorn_still_refuses_a_frame_after_the_close_with_the_words_the_hub_recognises():
    from notifications.hub.consumer import UVICORN_SEND_AFTER_CLOSE

    source = inspect.getsource(WebSocketsSansIOProtocol.send)
    assert UVICORN_SEND_AFTER_CLOSE in source
    assert "raise ClientDisconnected()" in source


HANDSHAKE_TOKEN = "handshake-token-that-must-not-outlive-the-handshake"


class _Transport(asyncio.Transport):
    """Just enough of a socket for uvicorn's WebSocket protocol: what it writes is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _requests_holding_the_token() -> list[Request]:
    gc.collect()
    return [
        candidate
        for candidate in gc.get_objects()
        if type(candidate) is Request and HANDSHAKE_TOKEN in str(candidate.headers)  # type(): weak proxies too
    ]


def test_an_open_websocket_keeps_no_copy_of_its_handshake_headers_but_the_scope_has_them():
    """uvicorn keeps the request as an attribute, websockets' parser as a local, for the connection's life."""
    uvicorn_patch.install()
    scopes: list[dict] = []

    async def application(scope, receive, send) -> None:
        scopes.append(scope)
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await receive()  # the connection stays open until the test ends

    async def handshake() -> _Transport:
        config = Config(application, ws="websockets-sansio", lifespan="off", log_level="warning")
        config.load()
        state = ServerState()
        protocol = WebSocketsSansIOProtocol(config, state, {}, asyncio.get_running_loop())
        transport = _Transport()
        protocol.connection_made(transport)
        protocol.data_received(
            b"GET /ws/notifications/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Authorization: Bearer " + HANDSHAKE_TOKEN.encode() + b"\r\n\r\n"
        )
        for _ in range(100):
            if transport.written:
                break
            await asyncio.sleep(0.01)
        assert transport.written.startswith(b"HTTP/1.1 101"), bytes(transport.written)
        assert protocol.request is None
        assert _requests_holding_the_token() == []
        protocol.connection_lost(None)
        await asyncio.wait_for(asyncio.gather(*state.tasks), timeout=5)  # the application has seen the disconnect
        return transport

    asyncio.run(handshake())
    [scope] = scopes
    headers = {name.lower(): value for name, value in scope["headers"]}
    assert headers[b"authorization"] == f"Bearer {HANDSHAKE_TOKEN}".encode()


def test_websockets_parser_still_holds_the_request_for_the_connections_life_which_is_why_its_headers_are_emptied():
    parse = inspect.getsource(ServerProtocol.parse)
    assert "request = yield from Request.parse(" in parse
    assert "yield from super().parse()" in parse
    assert "self.request = event" in inspect.getsource(uvicorn_patch._uvicorn_handle_connect)
