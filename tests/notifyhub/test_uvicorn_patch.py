"""Canary for notifyhub.uvicorn_patch: fails loudly if a uvicorn upgrade moves what it relies on.

The behaviour itself (the hub's goodbye before uvicorn's, in-flight requests
answered, a prompt exit) is covered end to end in tests/notifyhub/test_shutdown.py.
"""

import inspect

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import Server

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
    uvicorn_patch.install()
    assert Server.shutdown is uvicorn_patch._shutdown


def test_uvicorn_still_refuses_a_frame_after_the_close_with_the_words_the_hub_recognises():
    from notifications.hub.consumer import UVICORN_SEND_AFTER_CLOSE

    source = inspect.getsource(WebSocketsSansIOProtocol.send)
    assert UVICORN_SEND_AFTER_CLOSE in source
    assert "raise ClientDisconnected()" in source
