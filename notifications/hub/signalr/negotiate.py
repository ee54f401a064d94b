"""`POST /hubs/workflow/negotiate`: the first request of every SignalR client that does not skip negotiation.

It authenticates the bearer token (401 if it is not acceptable, so clients
fail fast instead of at the WebSocket), and answers with a connection id and
token and the one transport offered: WebSockets, `Text` first (signalrcore
takes the first format to choose JSON over MessagePack). Version 0
(pysignalr, signalrcore: no `negotiateVersion`) gets no `connectionToken`.
Nothing is stored: the WebSocket accepts any `id`.

Browsers call it cross-origin with credentials. django-cors-headers answers
their CORS (preflights included) for origins in `WS_ALLOWED_ORIGINS`, the same
rule as the hub's WebSocket handshakes, and under `/hubs/` only
(`cors_request_allowed`, connected in NotificationsConfig.ready()); any other
origin is refused here with a 403. Authentication is by bearer token only
(never the session cookie), which is why the view may be exempt from CSRF.
"""

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt

from notifications.hub.auth import AuthRefused, authenticate
from notifications.hub.origin import origin_allowed

SERVER_NEGOTIATE_VERSION = 1
TRANSPORTS = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
ALLOWED_METHODS = "POST, OPTIONS"
HUB_PATH_PREFIX = "/hubs/"


def _error(status: int, text: str) -> JsonResponse:
    # SignalR's error shape: the JS client puts the body in the error it rejects `start()` with.
    return JsonResponse({"error": text}, status=status)


def _bearer_token(request: HttpRequest) -> str | None:
    # Header only: every client sends it there on negotiate (browsers too), and daphne's access log prints
    # HTTP query strings unscrubbed. (Only the browser's WebSocket needs the access_token query parameter.)
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _negotiate_version(request: HttpRequest) -> int:
    """The version to answer with: min(requested, 1); none requested means 0. Raises ValueError with the text."""
    requested = request.GET.get("negotiateVersion")
    if requested is None:
        return 0
    try:
        version = int(requested)
    except ValueError:
        raise ValueError(f"The client requested an invalid protocol version '{requested[:32]}'.") from None
    if version < 0:
        raise ValueError(f"The client requested version '{version}', but the server does not support this version.")
    return min(version, SERVER_NEGOTIATE_VERSION)


def negotiation(version: int) -> dict:
    """The negotiate response: only keys every client accepts (no nulls, no redirect, no stateful reconnect)."""
    body = {"negotiateVersion": version, "connectionId": secrets.token_urlsafe(16)}
    if version >= 1:
        body["connectionToken"] = secrets.token_urlsafe(16)
    body["availableTransports"] = TRANSPORTS
    return body


def _negotiate(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return HttpResponse(status=204, headers={"Allow": ALLOWED_METHODS})
    if request.method != "POST":
        response = _error(405, f"Use POST to negotiate, not {request.method}.")
        response["Allow"] = ALLOWED_METHODS
        return response
    try:
        version = _negotiate_version(request)
    except ValueError as error:
        return _error(400, str(error))
    try:
        authenticate(_bearer_token(request))
    except AuthRefused as refused:
        response = _error(401, f"Unauthorized: {refused.reason}")
        response["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{refused.reason}"'
        return response
    response = JsonResponse(negotiation(version))
    response["Cache-Control"] = "no-store"
    return response


def cors_request_allowed(sender, request: HttpRequest, **kwargs) -> bool:
    """django-cors-headers' `check_request_enabled`: CORS for a SignalR request from an allowed origin only."""
    origin = request.headers.get("Origin")
    return (
        request.path_info.startswith(HUB_PATH_PREFIX)
        and origin is not None
        and origin_allowed(origin, settings.WS_ALLOWED_ORIGINS)
    )


@csrf_exempt
def negotiate(request: HttpRequest) -> HttpResponse:
    """Runs for every request to the negotiate URL but allowed preflights: the Origin rule, then the negotiation."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, settings.WS_ALLOWED_ORIGINS):
        response: HttpResponse = _error(403, "Origin not allowed.")
    else:
        response = _negotiate(request)
    if origin is not None:
        patch_vary_headers(response, ["Origin"])  # the answer depends on it, allowed or not
    return response
