"""Canary for notifyhub.daphne_patch: fails loudly if a daphne or autobahn upgrade moves what it relies on.

The behaviour itself (1008, 1009 and 4401 with reasons reaching a real client)
is covered end to end in tests/notifications/hub/.
"""

import asyncio
import inspect
import time

from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

from notifyhub import daphne_patch, shutdown


def test_daphne_still_routes_close_through_handle_reply():
    source = inspect.getsource(WebSocketProtocol)
    assert 'message["type"] == "websocket.close"' in source
    assert daphne_patch._daphne_handle_reply.__qualname__ == "WebSocketProtocol.handle_reply"


def test_autobahn_still_has_the_unchecked_close_frame_sender():
    parameters = inspect.signature(AutobahnProtocol.sendCloseFrame).parameters
    assert {"code", "reasonUtf8", "isReply"} <= set(parameters)
    assert hasattr(WebSocketProtocol, "STATE_OPEN")


def test_install_is_what_the_asgi_application_runs():
    import notifyhub.asgi  # noqa: F401  (importing it installs the patch)

    assert WebSocketProtocol.handle_reply is daphne_patch._handle_reply
    assert Server.kill_all_applications is daphne_patch._kill_all_applications
    assert Server.listen_success is daphne_patch._listen_success
    daphne_patch.install()
    assert WebSocketProtocol.handle_reply is daphne_patch._handle_reply


def test_daphne_still_kills_applications_before_shutdown_from_its_connections_table():
    source = inspect.getsource(Server.run)
    assert 'reactor.addSystemEventTrigger("before", "shutdown", self.kill_all_applications)' in source
    assert "listener.addCallback(self.listen_success)" in source
    assert '"application_instance"' in inspect.getsource(Server.create_application)


class FakePort:
    listening = True

    def stopListening(self) -> None:  # Twisted's name
        self.listening = False


def test_shutdown_stops_listening_at_once(monkeypatch):
    monkeypatch.setattr(shutdown, "begin", time.monotonic)  # no exit deadline in the test process

    async def scenario() -> bool:
        server = Server.__new__(Server)
        server.connections = {}
        port = FakePort()
        daphne_patch._listen_success(server, port)
        waiting = daphne_patch._kill_all_applications(server)
        stopped_first = not port.listening
        await waiting.asFuture(asyncio.get_running_loop())
        return stopped_first

    assert asyncio.run(scenario())


def test_shutdown_lets_applications_finish_within_the_grace_then_cancels_the_rest(monkeypatch):
    monkeypatch.setattr(shutdown, "HTTP_GRACE_SECONDS", 1.0)

    async def scenario() -> tuple[bool, bool, bool]:
        finishing = asyncio.ensure_future(asyncio.sleep(0.1))  # an HTTP request about to answer
        stuck = asyncio.ensure_future(asyncio.sleep(60))
        finished = asyncio.ensure_future(asyncio.sleep(0))
        await finished
        server = Server.__new__(Server)
        server.connections = {
            "idle keep-alive": {"connected": 0},
            "finished": {"connected": 0, "application_instance": finished},
            "finishing": {"connected": 0, "application_instance": finishing},
            "stuck": {"connected": 0, "application_instance": stuck},
        }
        await daphne_patch._drain(server, began_at=time.monotonic())
        return finishing.cancelled(), stuck.cancelled(), finished.cancelled()

    assert asyncio.run(scenario()) == (False, True, False)


def test_only_codes_rfc_6455_lets_endpoints_send_are_sent_directly():
    assert {1000, 1008, 1009, 1011, 4401} <= daphne_patch.SENDABLE_CLOSE_CODES
    assert not {1004, 1005, 1006, 1015, 2999, 5000} & daphne_patch.SENDABLE_CLOSE_CODES
