"""Canary for notifyhub.daphne_patch: fails loudly if a daphne or autobahn upgrade moves what it relies on.

The behaviour itself (1008, 1009 and 4401 with reasons reaching a real client)
is covered end to end in tests/notifications/hub/.
"""

import inspect

from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from daphne.ws_protocol import WebSocketProtocol

from notifyhub import daphne_patch


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
    daphne_patch.install()
    assert WebSocketProtocol.handle_reply is daphne_patch._handle_reply


def test_only_codes_rfc_6455_lets_endpoints_send_are_sent_directly():
    assert {1000, 1008, 1009, 1011, 4401} <= daphne_patch.SENDABLE_CLOSE_CODES
    assert not {1004, 1005, 1006, 1015, 2999, 5000} & daphne_patch.SENDABLE_CLOSE_CODES
