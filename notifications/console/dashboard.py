"""Placeholder: the dashboard is being built."""

from django.http import HttpRequest, HttpResponse


def dashboard(request: HttpRequest) -> HttpResponse:
    return HttpResponse("The dashboard is not built yet.", content_type="text/plain")


def dashboard_data(request: HttpRequest) -> HttpResponse:
    return HttpResponse("{}", content_type="application/json")
