"""Django's CommonMiddleware, made safe for the API."""

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.middleware.common import CommonMiddleware

from core.api.errors import error_body, not_found

API_PREFIX = "/api/"


class ApiCommonMiddleware(CommonMiddleware):
    """CommonMiddleware, plus three changes under /api/ where its behaviour would mislead a client.

    - No trailing-slash redirect: a 301 turns a POST into a GET and drops its body (and with
      DEBUG it is a 500). The JSON 404 says which URL was meant instead.
    - An unknown URL is that JSON 404 with DEBUG on too, where Django would answer with its
      HTML debug page: `make run` has DEBUG on, and clients should see what production sends.
    - A chunked body without Content-Length is a 411: REST framework would read it as empty
      and answer with misleading "field required" errors.
    """

    # django-stubs allows CommonMiddleware.process_request only its redirect; any response may stop a request.
    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:  # type: ignore[override]
        if (
            request.path_info.startswith(API_PREFIX)
            and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
            and not request.META.get("CONTENT_LENGTH")
        ):
            return JsonResponse(
                error_body(
                    "length_required", "Send the body with a Content-Length header; chunked bodies are refused."
                ),
                status=411,
            )
        return super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Runs on every response: a URL under /api/ that matched no route gets the JSON 404."""
        if response.status_code == 404 and request.resolver_match is None and request.path_info.startswith(API_PREFIX):
            response = not_found(request)
        return super().process_response(request, response)

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path_info.startswith(API_PREFIX):
            return False
        return super().should_redirect_with_slash(request)
