"""One JSON error shape for the whole API, and the one place domain errors become HTTP.

Every error response body is::

    {"code": "invalid", "message": "Some fields are invalid.", "fields": {"title": ["This field is required."]}}

`code` is stable and machine-readable, `message` is for people, and `fields`
(only when input was at fault) maps a dotted field path to its messages.
"""

import logging
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import is_valid_path
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.database import TRANSIENT_DATABASE_ERRORS
from core.errors import DomainError

logger = logging.getLogger(__name__)
DATABASE_RETRY_AFTER_SECONDS = "1"

NON_FIELD_KEYS = ("non_field_errors", "detail")

# Domain error codes that are not a plain 400.
DOMAIN_STATUS = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "permission_denied": status.HTTP_403_FORBIDDEN,
    "outside_scope": status.HTTP_403_FORBIDDEN,
    "invalid_transition": status.HTTP_409_CONFLICT,
    "idempotency_conflict": status.HTTP_409_CONFLICT,
    "already_performed": status.HTTP_409_CONFLICT,
}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return body


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error leaves in the shape above."""
    if isinstance(exc, DomainError):
        return _domain_error_response(exc)
    if isinstance(exc, TRANSIENT_DATABASE_ERRORS):
        # Not a bug: the database restarted or aborted this transaction. notifyhub/http.py runs the request
        # again when nothing was committed; otherwise the client retries after a second.
        logger.warning("database unavailable for %s: %s", context["request"].path, str(exc).strip().splitlines()[0])
        unavailable = Response(
            error_body("database_unavailable", "The database is unavailable for a moment; try again."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": DATABASE_RETRY_AFTER_SECONDS},
        )
        # Logged by the warning above: not again as an error by Django's request log (which reads this flag
        # with getattr; no class declares it).
        unavailable._has_been_logged = True  # type: ignore[attr-defined]
        return unavailable
    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django logs it and answers 500 (see server_error below)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    # exception_handler answers only APIException, Http404 and PermissionDenied (the last two replaced above).
    response.data = _api_exception_body(cast(exceptions.APIException, exc))
    return response


def _domain_error_response(exc: DomainError) -> Response:
    status_code, body = refusal(exc)
    return Response(body, status=status_code)


def refusal(exc: DomainError | exceptions.APIException) -> tuple[int, dict[str, Any]]:
    """The status and body a request refused with `exc` is answered with; also what one refused item of a
    batch says for itself, inside a response that answers the others."""
    if isinstance(exc, DomainError):
        return DOMAIN_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST), error_body(exc.code, exc.message, exc.fields())
    return exc.status_code, _api_exception_body(exc)


def _api_exception_body(exc: exceptions.APIException) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_field_errors(detail)
        general = fields.pop(None, None) or []
        message = " ".join(general) if general else "Some fields are invalid."
        return error_body("invalid", message, {path: messages for path, messages in fields.items() if path is not None})
    if isinstance(detail, dict) and "detail" in detail:
        # simplejwt's token errors: {"detail": ..., "code": ..., "messages": [...]}
        return error_body(str(detail.get("code") or exc.default_code), str(detail["detail"]))
    code = getattr(detail, "code", None) or exc.default_code
    return error_body(str(code), str(detail))


def flatten_field_errors(detail: Any, prefix: str | None = None) -> dict[str | None, list[str]]:
    """{"recipients": {"users": {"0": ["bad"]}}} → {"recipients.users.0": ["bad"]}; whole-body errors under None."""
    flat: dict[str | None, list[str]] = {}

    def merge(messages: dict[str | None, list[str]]) -> None:
        for path, path_messages in messages.items():
            flat.setdefault(path, []).extend(path_messages)

    if isinstance(detail, dict):
        for key, value in detail.items():
            path = prefix if key in NON_FIELD_KEYS else str(key) if prefix is None else f"{prefix}.{key}"
            merge(flatten_field_errors(value, path))
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, item in enumerate(detail):
            if item:  # a ListSerializer pads valid items with {}
                merge(flatten_field_errors(item, str(index) if prefix is None else f"{prefix}.{index}"))
    elif isinstance(detail, list):
        if detail:
            flat[prefix] = [str(item) for item in detail]
    else:
        flat[prefix] = [str(detail)]
    return flat


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404: JSON for unknown URLs, so clients see one error shape everywhere."""
    message = "Not found."
    if not request.path_info.endswith("/") and is_valid_path(f"{request.path_info}/"):
        message = f"Not found. Did you mean {request.path_info}/ ? API URLs end with a slash."
    return JsonResponse(error_body("not_found", message), status=status.HTTP_404_NOT_FOUND)


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: the bug is logged by Django; the client gets the error shape, no traceback."""
    return JsonResponse(
        error_body("server_error", "Something went wrong on our side; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler400: e.g. a Host header not in ALLOWED_HOSTS, or a request Django cannot parse."""
    return JsonResponse(error_body("bad_request", "Bad request."), status=status.HTTP_400_BAD_REQUEST)
