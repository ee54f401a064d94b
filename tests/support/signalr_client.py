"""A raw SignalR JSON-protocol client on the `websockets` sync client, for wire-level tests of `/hubs/workflow`.

    client = SignalRSocket.connect(hub_server, token=access_token(user))   # no negotiate: like skipNegotiation
    assert client.handshake() == {}
    invocation = client.next_message(lambda message: message.get("target") == "DocumentApproved")
    client.send({"type": 1, "invocationId": "1", "target": "AcknowledgeNotification", "arguments": [id]})
    completion = client.completion("1")

`sync()` is a barrier: it invokes a method that does not exist and reads up to
its completion, so every message the server sent before is in hand (the hub
handles a connection's records in order, and the replay finishes before any
record after the handshake is read).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from itertools import count

from websockets.exceptions import ConnectionClosed

from tests.support.hub_client import TIMEOUT, Closed, open_socket
from tests.support.servers import HubServer

SIGNALR_PATH = "/hubs/workflow"
RS = "\x1e"
_ids = count(1)


def record(message: dict) -> str:
    return json.dumps(message) + RS


def invocation(target: str, *arguments, invocation_id: str | None = None) -> dict:
    message = {"type": 1, "target": target, "arguments": list(arguments)}
    if invocation_id is not None:
        message["invocationId"] = invocation_id
    return message


class SignalRSocket:
    def __init__(self, socket) -> None:
        self.socket = socket
        self.frames: list[str] = []  # every text frame received, as sent
        self._messages: deque[dict] = deque()

    @classmethod
    def connect(cls, server: HubServer, *, path: str = SIGNALR_PATH, **kwargs) -> SignalRSocket:
        """Open the WebSocket; arguments as `hub_client.open_socket` (token, via, query, origin)."""
        return cls(open_socket(server, path=path, **kwargs))

    @classmethod
    def started(cls, server: HubServer, **kwargs) -> SignalRSocket:
        """Connected, handshake accepted, replay read up to a barrier (see `replayed`)."""
        client = cls.connect(server, **kwargs)
        assert client.handshake() == {}
        client.replayed = client.sync()
        return client

    def __enter__(self) -> SignalRSocket:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.socket.close()

    # Sending ---------------------------------------------------------------------------------------------------

    def send(self, *messages: dict) -> None:
        """All messages in one text frame."""
        self.socket.send("".join(record(message) for message in messages))

    def send_raw(self, data: str | bytes) -> None:
        self.socket.send(data)

    def handshake(self, protocol: str = "json", version: int = 1) -> dict:
        """Send the handshake request; return the response (the first record back)."""
        self.send({"protocol": protocol, "version": version})
        return self.next_record()

    def invoke(self, target: str, *arguments) -> dict:
        """Invoke with a fresh invocation id; return its completion (messages before it stay queued)."""
        invocation_id = str(next(_ids))
        self.send(invocation(target, *arguments, invocation_id=invocation_id))
        return self.completion(invocation_id)

    # Receiving -------------------------------------------------------------------------------------------------

    def _read_frame(self, timeout: float) -> None:
        frame = self.socket.recv(timeout=timeout)
        assert isinstance(frame, str), f"binary frame from the server: {frame!r}"
        assert frame.endswith(RS), f"frame without a trailing record separator: {frame!r}"
        self.frames.append(frame)
        self._messages.extend(json.loads(part) for part in frame.split(RS)[:-1])

    def next_record(self, timeout: float = TIMEOUT) -> dict:
        while not self._messages:
            self._read_frame(timeout)
        return self._messages.popleft()

    def messages_until(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT) -> list[dict]:
        """Every message up to and including the first that matches (keep-alive pings included)."""
        messages = []
        while True:
            message = self.next_record(timeout)
            messages.append(message)
            if predicate(message):
                return messages

    def next_message(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT) -> dict:
        return self.messages_until(predicate, timeout)[-1]

    def completion(self, invocation_id: str, timeout: float = TIMEOUT) -> dict:
        return self.next_message(lambda message: is_completion(message, invocation_id), timeout)

    def sync(self) -> list[dict]:
        """Invocations received before a barrier completion (pings left out)."""
        invocation_id = f"sync-{next(_ids)}"
        self.send(invocation("Barrier", invocation_id=invocation_id))
        messages = self.messages_until(lambda message: is_completion(message, invocation_id))
        return [message for message in messages[:-1] if message.get("type") == 1]

    def closed(self, timeout: float = TIMEOUT) -> Closed:
        """Read until the server closes; return its close code and reason and the messages received before."""
        messages = []
        try:
            while True:
                messages.append(self.next_record(timeout))
        except ConnectionClosed as closed:
            messages.extend(self._messages)
            if closed.rcvd is None:
                return Closed(1006, "", messages)
            return Closed(closed.rcvd.code, closed.rcvd.reason, messages)


def is_completion(message: dict, invocation_id: str) -> bool:
    return message.get("type") == 3 and message.get("invocationId") == invocation_id


def targeting(target: str, notification_id=None) -> Callable[[dict], bool]:
    """Matches an invocation of `target` (about that notification, if given)."""

    def matches(message: dict) -> bool:
        if message.get("type") != 1 or message.get("target") != target:
            return False
        return notification_id is None or message["arguments"][0].get("notificationId") == str(notification_id)

    return matches
