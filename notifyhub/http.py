"""Django's ASGI handler for HTTP, with one thread hop per request into a reused thread.

Every NotifyHub view is synchronous. Under Django's own ASGI handler a request
hops between the event loop and a thread for each sync part of each middleware
(process_request, process_view, process_response: a dozen hops), and every
request gets a brand-new thread for them (asgiref's per-request
ThreadSensitiveContext), which is joined by yet another new thread at the end.
The event loop stalls while each new thread waits for the GIL to start.

This handler runs the whole middleware chain and the view in one call on a
worker thread, as a WSGI server would, and takes that thread from a pool
instead of starting one. A request still owns its thread from start to finish
(request_started, the view, request_finished all run there), so what Django
keeps per thread — the database connection, returned to the pool at
request_finished — behaves exactly as before.

A request the server cancels (at shutdown, past its grace: `notifyhub/shutdown.py`)
is answered 503 `shutting_down` if it has no answer yet, rather than left without one.
"""

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler

# Threads kept for the next requests after a burst; more are started when more requests run at once.
IDLE_THREADS_KEPT = 32


class RequestThreads:
    """Single-thread executors handed to one request at a time, and kept for the next ones."""

    def __init__(self, *, idle_kept: int = IDLE_THREADS_KEPT) -> None:
        self._idle: list[ThreadPoolExecutor] = []
        self._idle_kept = idle_kept
        self._lock = threading.Lock()

    def take(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self._idle_kept:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)  # its thread exits once idle; nothing waits for it


class SyncViewsASGIHandler(ASGIHandler):
    """ASGIHandler with a synchronous middleware chain, run in one hop on a pooled request thread."""

    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.request_threads = RequestThreads()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.request_threads.take()
        answer = Answer(send)
        cancelled = False
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, answer.send)
        except asyncio.CancelledError:
            cancelled = True
            await answer.refuse_if_unanswered()
            raise
        finally:
            if cancelled:  # the view may still be running on its thread: no other request may queue behind it
                executor.shutdown(wait=False)
            else:
                self.request_threads.give_back(executor)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


class Answer:
    """A request's ASGI `send`, which knows whether the response has started; once refused, the view's is dropped."""

    RETRY_AFTER_SECONDS = 1

    def __init__(self, send) -> None:
        self._send = send
        self.started = False
        self.refused = False

    async def send(self, message: dict) -> None:
        if self.refused:  # the view finished after the server gave up on it: the client has its 503
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def refuse_if_unanswered(self) -> None:
        """503 `shutting_down` (the error shape of notifyhub/api/errors.py) unless the response has started."""
        if self.started:
            return
        self.refused = True
        body = json.dumps(
            {"code": "shutting_down", "message": "The server is restarting; send the request again."}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.RETRY_AFTER_SECONDS).encode()),
            (b"connection", b"close"),
        ]
        await self._send({"type": "http.response.start", "status": 503, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})
