"""Placeholder: the presence pages are being built."""

from django.http import HttpRequest, HttpResponse


def online_now(request: HttpRequest) -> HttpResponse:
    return HttpResponse("The presence page is not built yet.", content_type="text/plain")


def user_presence(request: HttpRequest, username: str) -> HttpResponse:
    return HttpResponse("The presence page is not built yet.", content_type="text/plain")
