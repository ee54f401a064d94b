"""pysignalr (the Python SignalR client from PyPI) driven from a synchronous test.

The client runs on its own event loop in a thread; what it receives lands in
queues the test reads with timeouts:

    with PySignalR(server.http_url("/hubs/workflow"), token) as client:
        client.wait_open()
        target, arguments = client.next_event()
        completion = client.invoke("AcknowledgeNotification", arguments[0]["notificationId"])

The token goes in the `headers` option: pysignalr's `access_token_factory`
only takes effect after the first negotiate and WebSocket upgrade.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading

from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage

TIMEOUT = 15
WORKFLOW_EVENTS = ("DocumentApproved", "NewTask", "DocumentRejected")


class PySignalR:
    def __init__(self, url: str, token: str, *, targets: tuple[str, ...] = WORKFLOW_EVENTS, **options) -> None:
        self.events: queue.Queue[tuple[str, list]] = queue.Queue()
        self.opens: queue.Queue[bool] = queue.Queue()
        self.closes: queue.Queue[bool] = queue.Queue()
        self.outcome: concurrent.futures.Future = concurrent.futures.Future()  # how run() ended
        self.loop = asyncio.new_event_loop()
        self.client = SignalRClient(url, headers={"Authorization": f"Bearer {token}"}, **options)
        for target in targets:
            self.client.on(target, self._event_handler(target))
        self.client.on_open(self._opened)
        self.client.on_close(self._closed)
        self.client.on_error(self._error)  # errors also reach each invoke's own callback
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _event_handler(self, target: str):
        async def handle(arguments: list) -> None:
            self.events.put((target, arguments))

        return handle

    async def _opened(self) -> None:
        self.opens.put(True)

    async def _closed(self) -> None:
        self.closes.put(True)

    async def _error(self, message: CompletionMessage) -> None:
        pass

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self.client.run())
        try:
            self.loop.run_until_complete(self.task)
            self.outcome.set_result(None)
        except asyncio.CancelledError:
            self.outcome.set_result(None)
        except Exception as error:
            self.outcome.set_exception(error)
        finally:  # the websockets connection leaves keepalive tasks behind: end them before the loop
            leftovers = asyncio.all_tasks(self.loop)
            for task in leftovers:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            self.loop.close()

    def __enter__(self) -> PySignalR:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def wait_open(self, timeout: float = TIMEOUT) -> None:
        """Until the client has connected (again): negotiate, WebSocket, handshake done."""
        try:
            self.opens.get(timeout=timeout)
        except queue.Empty:
            if self.outcome.done():
                self.outcome.result()  # raises what stopped the client
            raise AssertionError("pysignalr did not connect") from None

    def wait_closed(self, timeout: float = TIMEOUT) -> None:
        self.closes.get(timeout=timeout)

    def next_event(self, timeout: float = TIMEOUT) -> tuple[str, list]:
        return self.events.get(timeout=timeout)

    def invoke(self, method: str, *arguments, timeout: float = TIMEOUT) -> CompletionMessage:
        """Call a hub method with an invocation id; the server's completion."""
        answered: concurrent.futures.Future = concurrent.futures.Future()

        async def on_completion(message: CompletionMessage) -> None:
            answered.set_result(message)

        asyncio.run_coroutine_threadsafe(
            self.client.send(method, list(arguments), on_invocation=on_completion), self.loop
        ).result(timeout)
        return answered.result(timeout)

    def send(self, method: str, *arguments, timeout: float = TIMEOUT) -> None:
        """Call a hub method without an invocation id (no answer); returns once it is sent."""
        asyncio.run_coroutine_threadsafe(self.client.send(method, list(arguments)), self.loop).result(timeout)

    def result(self, timeout: float = TIMEOUT):
        """How `run()` ended: returns, or raises what stopped the client."""
        return self.outcome.result(timeout)

    def close(self) -> None:
        if not self.outcome.done():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(timeout=10)
