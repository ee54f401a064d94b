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
import io
import json
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import DEFAULT_DB_ALIAS, connections

from core.database import TRANSIENT_DATABASE_ERRORS

logger = logging.getLogger(__name__)
# Pauses before each rerun of a request the database failed before any commit (see get_response_retrying).
RERUN_PAUSES = (0.0, 0.2)

# Threads kept for the next requests after a burst; more are started when more requests run at once.
IDLE_THREADS_KEPT = 32
# Requests whose view runs at once (see SyncViewsASGIHandler._request_slot).
REQUESTS_AT_ONCE = 8


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
        # event loop -> its semaphore of REQUESTS_AT_ONCE
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        limit = api_body_limit(scope)
        if limit is None:
            async with self._request_slot():
                await self._handle_on_a_thread(scope, receive, send)
            return
        declared = declared_body_length(scope)
        if declared is not None and declared > limit:
            await refuse_body_too_large(send, limit)  # before one byte of it is read, whatever its size
            return
        try:
            async with self._request_slot():
                await self._handle_on_a_thread(scope, BodyCounter(receive, limit), send)
        except BodyTooLarge:  # a body without Content-Length (chunked) grew past the limit while it was read
            await refuse_body_too_large(send, limit)

    def _request_slot(self) -> asyncio.Semaphore:
        """At most REQUESTS_AT_ONCE requests run their view at once; the others wait on the event loop.

        Views are CPU and database work under one GIL: dozens of request threads at once (a publisher with 64
        connections) finish no sooner together, but starve the event loop that serves every WebSocket of the
        process, and hold database connections while they wait for the GIL.
        """
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(REQUESTS_AT_ONCE)
        return slots

    async def _handle_on_a_thread(self, scope, receive, send) -> None:
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
        return await sync_to_async(self.get_response_retrying, thread_sensitive=True)(request)

    def get_response_retrying(self, request):
        """The response, with the request run again if the database failed it before anything was committed.

        A PostgreSQL restart, or an operator terminating backends, fails the queries in flight at that moment
        (the pool's own check replaces idle connections before they are handed out). Such a request answers
        503 `database_unavailable` (core/api/errors.py); when the ledger shows it committed no write, it
        is run again on a fresh connection, and the client never sees the blip. Up to `RERUN_PAUSES` times:
        the terminations of one restart reach every backend over some milliseconds, so a connection handed
        out alive may be cut a moment later, and the first rerun with it.
        """
        attempt = request
        for pause in (*RERUN_PAUSES, None):
            ledger = DatabaseLedger()
            with connections[DEFAULT_DB_ALIAS].execute_wrapper(ledger):
                response = self.get_response(attempt)
            if pause is None or not (
                ledger.transient_error and ledger.nothing_committed and response.status_code == 503
            ):
                return response
            try:
                body = request.body  # read (and kept) by the view already, or still unread in its stream
            except Exception:  # e.g. too large to keep: answer the 503, the client retries
                return response
            logger.warning(
                "%s %s: the database failed mid-request before any commit; running it again",
                request.method,
                request.path,
            )
            response.close()
            connections[DEFAULT_DB_ALIAS].close()  # back to the pool, which discards it if broken
            time.sleep(pause)
            attempt = self.request_class(request.scope, io.BytesIO(body))
        raise AssertionError("unreachable: the last attempt's response is returned")


class DatabaseLedger:
    """What one request did with the database, as its queries run (a `connection.execute_wrapper`).

    `transient_error`: a query failed with a transient database error (a lost connection, a deadlock).
    `nothing_committed`: no write has been committed yet, so running the request again cannot repeat one.
    A write inside a transaction counts once that transaction commits; outside one, at once (autocommit).
    """

    READS = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "SET", "SHOW")

    def __init__(self) -> None:
        self.transient_error = False
        self.nothing_committed = True

    def __call__(self, execute, sql, params, many, context):
        try:
            result = execute(sql, params, many, context)
        except TRANSIENT_DATABASE_ERRORS:
            self.transient_error = True
            raise
        if not sql.lstrip().upper().startswith(self.READS):
            connection = context["connection"]
            if connection.in_atomic_block:
                connection.on_commit(self._committed)
            else:
                self._committed()
        return result

    def _committed(self) -> None:
        self.nothing_committed = False


API_PREFIX = "/api/"


def api_body_limit(scope: Mapping[str, Any]) -> int | None:
    """The largest body the request may carry: `API_MAX_BODY_BYTES` under /api/ (docs/api.md), else Django's."""
    if scope.get("path", "").startswith(API_PREFIX):
        return int(settings.API_MAX_BODY_BYTES)
    return None


def declared_body_length(scope: Mapping[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # malformed: the server or Django refuses it
    return None


class BodyTooLarge(Exception):
    """A request body read past its limit."""


class BodyCounter:
    """The ASGI `receive` of a request, counting its body: past `limit` bytes it raises `BodyTooLarge`, so a body
    sent without a length is never read, let alone kept, beyond the limit."""

    def __init__(self, receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._read = 0

    async def __call__(self) -> Mapping[str, Any]:
        message = await self._receive()
        if message["type"] == "http.request":
            self._read += len(message.get("body", b""))
            if self._read > self._limit:
                raise BodyTooLarge
        return message


async def refuse_body_too_large(send, limit: int) -> None:
    """413 `body_too_large` in the API's error shape (core/api/parsers.py answers the same inside DRF)."""
    body = json.dumps(
        {"code": "body_too_large", "message": f"The request body is larger than the limit of {limit} bytes."}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body may still be on its way: do not read it as a request
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Answer:
    """A request's ASGI `send`, which knows whether the response has started; once refused, the view's is dropped."""

    RETRY_AFTER_SECONDS = 1

    def __init__(self, send) -> None:
        self._send = send
        self.started = False
        self.refused = False

    async def send(self, message: Mapping[str, Any]) -> None:
        if self.refused:  # the view finished after the server gave up on it: the client has its 503
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def refuse_if_unanswered(self) -> None:
        """503 `shutting_down` (the error shape of core/api/errors.py) unless the response has started."""
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
