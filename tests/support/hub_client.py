"""A test client for the native hub protocol (docs/protocol.md), on the `websockets` sync client.

    client = NativeClient.connect(hub_server, token=access_token(user))
    hello, replayed = client.start()          # hello + every replayed notification, up to replay_complete
    client.send(type="ack", id=replayed[0]["id"])
    frames = client.frames_until(lambda frame: frame["type"] == "pong")

Assertions about what did *not* arrive use a sentinel: publish something
after it that travels the same way, read up to the sentinel, and look at the
frames before it (the channel layer keeps a connection's messages in order).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import NamedTuple

from rest_framework_simplejwt.tokens import AccessToken
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.servers import NATIVE_PATH, HubServer

TIMEOUT = 10


def access_token(user, *, lifetime: timedelta | None = None) -> str:
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


def open_socket(
    server: HubServer,
    *,
    token: str | None = None,
    via: str = "header",
    origin: str | None = None,
    path: str = NATIVE_PATH,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **options,
) -> ClientConnection:
    """A raw `websockets` connection, the token in the Authorization header or the access_token query;
    `headers`: more handshake headers."""
    headers = dict(headers or {})
    query = dict(query or {})
    if token is not None and via == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif token is not None:
        query["access_token"] = token
    return connect(
        server.ws_url(path, **query),
        additional_headers=headers,
        origin=origin,
        proxy=None,
        open_timeout=TIMEOUT,
        legacy=True,  # a connection object, not only a context manager
        **options,
    )


class NativeClient:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    @classmethod
    def connect(cls, server: HubServer, **kwargs) -> NativeClient:
        return cls(open_socket(server, **kwargs))

    def __enter__(self) -> NativeClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.socket.close()

    def send(self, **frame) -> None:
        self.socket.send(json.dumps(frame))

    def send_raw(self, data: str | bytes) -> None:
        self.socket.send(data)

    def recv(self, timeout: float = TIMEOUT) -> dict:
        return json.loads(self.socket.recv(timeout=timeout))

    def start(self) -> tuple[dict, list[dict]]:
        """Read `hello` and the replay; return hello and the replayed notifications."""
        hello = self.recv()
        assert hello["type"] == "hello", hello
        frames = self.frames_until(lambda frame: frame["type"] == "replay_complete")
        replayed = frames[:-1]
        assert all(frame["type"] == "notification" and frame["replayed"] for frame in replayed), replayed
        assert frames[-1]["count"] == len(replayed)
        return hello, replayed

    def frames_until(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT) -> list[dict]:
        """Every frame up to and including the first that matches."""
        frames = []
        while True:
            frame = self.recv(timeout)
            frames.append(frame)
            if predicate(frame):
                return frames

    def request(self, reply_type: str, **frame) -> dict:
        """Send a frame and return the next frame (which must be `reply_type` or an error)."""
        self.send(**frame)
        reply = self.recv()
        assert reply["type"] in (reply_type, "error"), reply
        return reply

    def closed(self, timeout: float = TIMEOUT) -> Closed:
        """Read until the server closes; return its close code and reason and the frames received before."""
        frames = []
        try:
            while True:
                frames.append(json.loads(self.socket.recv(timeout=timeout)))
        except ConnectionClosed as closed:
            if closed.rcvd is None:
                return Closed(1006, "", frames)  # no close frame
            return Closed(closed.rcvd.code, closed.rcvd.reason, frames)


class Closed(NamedTuple):
    code: int
    reason: str
    frames: list[dict]


def until_notification(notification_id: str) -> Callable[[dict], bool]:
    return lambda frame: frame["type"] == "notification" and frame["id"] == str(notification_id)
