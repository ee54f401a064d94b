"""Placeholder: "why wasn't U notified?" is being built."""

from django.http import HttpRequest, HttpResponse


def why_not_notified(request: HttpRequest) -> HttpResponse:
    return HttpResponse("The explanation page is not built yet.", content_type="text/plain")
