"""A stand-in for Google's FCM HTTP v1 endpoint and OAuth token endpoint, served on 127.0.0.1.

The real firebase-admin SDK talks to it (it has no setting for its endpoints): tests point
`firebase_admin.messaging._MessagingService.FCM_URL` at `send_url` and give the
SDK a service-account file whose `token_uri` is `token_url`, so the OAuth step
runs for real too. Replies are scripted per device token (`script`); every
request is recorded (`requests`, `accepted`).
"""

import json
import select
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ACCESS_TOKEN = "fake-fcm-access-token"
PROJECT_ID = "notifyhub-test"

# FCM's error answers: HTTP status, canonical status, FcmError errorCode.
FCM_ERRORS = {
    "UNREGISTERED": (404, "NOT_FOUND"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL"),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED"),
}


@dataclass(frozen=True)
class Reply:
    error: str | None = None  # an FCM_ERRORS key; None answers success
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (longer than the SDK's timeout = a timeout)
    hold: bool = False  # answer only after release(); if the client goes away first, drop the request


OK = Reply()


def error(code: str, **kwargs) -> Reply:
    return Reply(error=code, **kwargs)


@dataclass
class Request:
    token: str
    message: dict
    outcome: str  # "accepted", the error code, or "abandoned" (the client left while it was held)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that timed out or died before the answer is expected here, not an error."""
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


class FakeFcm:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        self.held = threading.Event()  # set while a request is being held
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/token":  # a form-encoded JWT-bearer grant, signed with the file's key
                    self._answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
                elif self.path == f"/v1/projects/{PROJECT_ID}/messages:send":
                    fake._handle_send(self, json.loads(body))
                else:
                    self._answer(404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})

            def _answer(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.send_url = f"http://127.0.0.1:{self.port}/v1/projects/{{0}}/messages:send"
        self.token_url = f"http://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-fcm", daemon=True)

    # --- test-facing API ------------------------------------------------------------------
    def start(self) -> "FakeFcm":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
        self.held.clear()
        self._release.clear()

    def script(self, token: str, *replies: Reply) -> None:
        """Answer successive requests for `token` with `replies`; the last one repeats."""
        with self._lock:
            self._scripts[token] = list(replies)

    def release(self) -> None:
        """Let held requests answer."""
        self._release.set()

    def messages_to(self, token: str) -> list[dict]:
        """Every message FCM received for `token` (whatever it answered)."""
        with self._lock:
            return [request.message for request in self.requests if request.token == token]

    def accepted(self, token: str) -> list[dict]:
        """The messages FCM accepted for `token`: what the device would show."""
        with self._lock:
            return [r.message for r in self.requests if r.token == token and r.outcome == "accepted"]

    def write_credentials(self, directory: Path) -> Path:
        """A service-account file whose OAuth token endpoint is this server."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        path = directory / "fcm-service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT_ID,
                    "private_key_id": "fake-key",
                    "private_key": pem,
                    "client_email": f"notifyhub@{PROJECT_ID}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": self.token_url,
                }
            )
        )
        return path

    # --- server side ------------------------------------------------------------------------
    def _next_reply(self, token: str) -> Reply:
        with self._lock:
            replies = self._scripts.get(token) or [OK]
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handle_send(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        if handler.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            handler._answer(401, {"error": {"code": 401, "message": "no OAuth token", "status": "UNAUTHENTICATED"}})
            return
        message = body.get("message", {})
        token = message.get("token", "")
        reply = self._next_reply(token)
        # Recorded on receipt: FCM delivers what it received even if its answer comes too late for the
        # client. Only a held request is undecided: dropped if the client leaves before release().
        request = Request(token, message, reply.error or "accepted")
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
        if reply.hold and not self._hold(handler.connection):
            request.outcome = "abandoned"
            handler.close_connection = True
            return
        if reply.delay:
            threading.Event().wait(reply.delay)
        if reply.error is None:
            handler._answer(200, {"name": f"projects/{PROJECT_ID}/messages/{number}"}, reply.headers)
            return
        status, canonical = FCM_ERRORS[reply.error]
        handler._answer(
            status,
            {
                "error": {
                    "code": status,
                    "message": f"fake {reply.error}",
                    "status": canonical,
                    "details": [
                        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": reply.error}
                    ],
                }
            },
            reply.headers,
        )

    def _hold(self, connection: socket.socket) -> bool:
        """Wait for release(); False if the client closed the connection first."""
        self.held.set()
        while not self._release.wait(0.05):
            readable, _, _ = select.select([connection], [], [], 0)
            try:
                if readable and not connection.recv(1, socket.MSG_PEEK):
                    return False
            except OSError:  # reset by the peer
                return False
        return True
