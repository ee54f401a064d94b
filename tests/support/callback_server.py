"""A publisher's action callback endpoint on 127.0.0.1: it records every POST and answers scripted statuses
(200 once the script runs out), so tests can check the signature and the retries of real calls."""

import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what it was answered


class CallbackServer:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._statuses: deque[int] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    status = server._statuses.popleft() if server._statuses else 200
                    server.calls.append(Call(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/notifyhub/actions"

    def script(self, *statuses: int) -> None:
        """The next calls are answered with these statuses, in order; then 200."""
        with self._lock:
            self._statuses.extend(statuses)

    def start(self) -> "CallbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
