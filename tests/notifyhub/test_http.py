"""notifyhub/http.py: HTTP requests under ASGI run their middleware and view in one hop, on a reused thread."""

import asyncio
import json
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished, request_started
from django.db import connection
from django.http import JsonResponse
from django.urls import path

from notifyhub.http import RequestThreads, SyncViewsASGIHandler

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

seen: list[tuple[str, int]] = []  # (what ran, on which thread)
meeting = threading.Barrier(2, timeout=5)
request_connections = []


def where_am_i(request):
    seen.append(("view", threading.get_native_id()))
    return JsonResponse({"thread": threading.get_native_id()})


def meet_another_request(request):
    meeting.wait()  # raises (a 500) unless a second request reaches it while this one waits
    return JsonResponse({"thread": threading.get_native_id()})


view_started, view_may_finish = threading.Event(), threading.Event()


def slow_to_answer(request):
    view_started.set()
    view_may_finish.wait(5)
    return JsonResponse({"late": True})


def query_the_database(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    request_connections.append(connection)  # this thread's connection handle
    return JsonResponse({"open": connection.connection is not None})


urlpatterns = [
    path("where", where_am_i),
    path("meet", meet_another_request),
    path("query", query_the_database),
    path("slow", slow_to_answer),
]


@pytest.fixture(autouse=True)
def recorded_signals():
    seen.clear()
    request_connections.clear()
    meeting.reset()
    view_started.clear()
    view_may_finish.clear()

    def started(**kwargs):
        seen.append(("request_started", threading.get_native_id()))

    def finished(**kwargs):
        seen.append(("request_finished", threading.get_native_id()))

    request_started.connect(started)
    request_finished.connect(finished)
    yield
    request_started.disconnect(started)
    request_finished.disconnect(finished)


def http_scope(url: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def get(application, url: str) -> tuple[int, bytes]:
    communicator = ApplicationCommunicator(application, http_scope(url))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    body = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)
    return start["status"], body["body"]


def test_request_started_the_view_and_request_finished_run_on_one_thread_off_the_event_loop():
    async def scenario():
        status, _ = await get(SyncViewsASGIHandler(), "/where")
        return status, threading.get_native_id()

    status, loop_thread = asyncio.run(scenario())

    assert status == 200
    assert [what for what, _ in seen] == ["request_started", "view", "request_finished"]
    threads = {thread for _, thread in seen}
    assert len(threads) == 1
    assert loop_thread not in threads


def test_requests_one_after_another_reuse_the_same_thread():
    async def scenario():
        application = SyncViewsASGIHandler()
        for _ in range(3):
            await get(application, "/where")

    asyncio.run(scenario())

    view_threads = [thread for what, thread in seen if what == "view"]
    assert len(view_threads) == 3
    assert len(set(view_threads)) == 1


def test_requests_at_the_same_time_run_on_separate_threads():
    async def scenario():
        application = SyncViewsASGIHandler()
        return await asyncio.gather(get(application, "/meet"), get(application, "/meet"))

    (first_status, first_body), (second_status, second_body) = asyncio.run(scenario())

    assert (first_status, second_status) == (200, 200)
    assert first_body != second_body  # two thread ids


def test_the_requests_database_connection_is_closed_when_it_finishes():
    async def scenario():
        return await get(SyncViewsASGIHandler(), "/query")

    status, body = asyncio.run(scenario())

    assert (status, body) == (200, b'{"open": true}')
    [handle] = request_connections
    assert handle.connection is None  # closed by request_finished (or returned to the web process's pool)


def test_a_request_the_server_cancels_at_shutdown_is_answered_503_and_the_view_s_late_answer_is_dropped():
    async def scenario():
        communicator = ApplicationCommunicator(SyncViewsASGIHandler(), http_scope("/slow"))
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        assert await asyncio.to_thread(view_started.wait, 5)
        communicator.future.cancel()  # what a server does to a request still running past its shutdown grace
        # From the queue: receive_output() would raise the application's cancellation first.
        start = await asyncio.wait_for(communicator.output_queue.get(), 10)
        body = await asyncio.wait_for(communicator.output_queue.get(), 10)
        view_may_finish.set()
        await asyncio.sleep(0.5)  # the view returns; its response must not follow the 503
        return start, body, communicator.output_queue.empty()

    start, body, nothing_after = asyncio.run(scenario())

    assert start["status"] == 503
    assert (b"retry-after", b"1") in start["headers"]
    assert json.loads(body["body"]) == {
        "code": "shutting_down",
        "message": "The server is restarting; send the request again.",
    }
    assert nothing_after


def test_a_websocket_scope_is_not_django_s():
    async def scenario():
        await SyncViewsASGIHandler()({"type": "websocket"}, None, None)

    with pytest.raises(ValueError, match="websocket"):
        asyncio.run(scenario())


def test_threads_beyond_the_idle_limit_are_let_go():
    threads = RequestThreads(idle_kept=2)
    taken = [threads.take() for _ in range(3)]
    for executor in taken:
        executor.submit(threading.get_ident).result()  # start each one's thread

    for executor in taken:
        threads.give_back(executor)

    assert [executor._shutdown for executor in taken] == [False, False, True]
    assert {threads.take(), threads.take()} == set(taken[:2])
