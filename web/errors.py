"""Not found and expired forms: a page for the pages' URLs, the API's (or Django's) answer everywhere else."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.csrf import csrf_failure as django_csrf_failure

from core.api.errors import not_found as api_not_found

PAGE_PREFIXES = ("/inbox/", "/tasks/", "/documents/", "/sign-in/", "/sign-out/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: a person following a stale link gets a page with the way back; clients get JSON."""
    if request.path_info.startswith(PAGE_PREFIXES):
        return render(request, "web/not_found.html", status=404)
    return api_not_found(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent from a page that is out of date (signed in or out in another tab since) says
    so and offers the way back, instead of Django's page for developers."""
    if request.path_info.startswith(PAGE_PREFIXES):
        return render(request, "web/form_expired.html", status=403)
    return django_csrf_failure(request, reason)
