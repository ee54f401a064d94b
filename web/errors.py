"""Not found: a page for the pages' URLs, the API's JSON error everywhere else."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.api.errors import not_found as api_not_found

PAGE_PREFIXES = ("/inbox/", "/tasks/", "/documents/", "/sign-in/", "/sign-out/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: a person following a stale link gets a page with the way back; clients get JSON."""
    if request.path_info.startswith(PAGE_PREFIXES):
        return render(request, "web/not_found.html", status=404)
    return api_not_found(request, exception)
