"""A small HTTP service in the test process that makes test data for tests written in another language.

The JavaScript client's Node tests (clients/js/test/) run in a Node process
against a real hub server; what a Python test would build with factories they
ask for here, on the same test database:

    POST /users      {}                                   -> {"id", "username"}    a fresh active user
    POST /tokens     {"username", "lifetime"?: seconds}   -> {"access", "expires_at"}    a real signed JWT
    POST /documents  {"requester", "viewers": [usernames]} -> {"id"}    a draft the viewers may see (one department)
    POST /deactivate {"username"}                         -> {}    the user can no longer connect

It is test data, not a stand-in for the server: everything the client does
goes to the real hub (publishing included, through the REST API).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection

import workflow.services as workflow
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from tests.support.hub_client import access_token


def _new_user(payload: dict) -> dict:
    user = UserFactory(username=f"js-{uuid.uuid4().hex[:10]}")
    return {"id": user.pk, "username": user.username}


def _token(payload: dict) -> dict:
    user = get_user_model().objects.get(username=payload["username"])
    lifetime = timedelta(seconds=payload.get("lifetime") or 300)
    return {"access": access_token(user, lifetime=lifetime), "lifetime": lifetime.total_seconds()}


def _document(payload: dict) -> dict:
    users = get_user_model().objects
    requester = users.get(username=payload["requester"])
    viewers = [users.get(username=username) for username in payload.get("viewers", [])]
    department = DepartmentFactory()
    add_members(department, requester, *viewers)
    approver = viewers[0] if viewers else UserFactory(username=f"js-{uuid.uuid4().hex[:10]}")
    document = workflow.document_create(
        requester=requester, department=department, title="Shared draft", approvers=[approver]
    )
    return {"id": document.pk}


def _deactivate(payload: dict) -> dict:
    user = get_user_model().objects.get(username=payload["username"])
    user.is_active = False
    user.save(update_fields=["is_active"])  # saved, not updated: its sockets are closed as by the admin
    return {}


ROUTES = {"/users": _new_user, "/tokens": _token, "/documents": _document, "/deactivate": _deactivate}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        route = ROUTES.get(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
            status, body = (200, route(payload)) if route else (404, {"error": f"no route {self.path}"})
        except Exception as error:  # shown to the Node test that asked
            status, body = 500, {"error": repr(error)}
        finally:
            close_old_connections()
            connection.close()  # each request runs on a thread of its own: leave no connection behind
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        pass


class TestDataService:
    """Serves ROUTES on 127.0.0.1 (a port the OS picked) from a thread, as a context manager."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TestDataService:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()
