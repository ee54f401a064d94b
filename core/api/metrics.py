"""GET /metrics: this host's metrics in the Prometheus text format, for a Prometheus server (docs/metrics.md).

Not part of the REST API: no user, no throttle, no schema; a plain Django view, cheap to call every few seconds.
Who may scrape is the settings': a client from METRICS_ALLOWED_NETWORKS (empty: any), sending
`Authorization: Bearer <METRICS_TOKEN>` when that is set, compared in constant time. The client address is
the one notifyhub/proxies.py resolved: a forwarded address counts only when a proxy in TRUSTED_PROXIES named it.
Refusals and failures answer in the API's error shape, never with a traceback.
"""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from rest_framework import status

from core import metrics
from core.api.errors import error_body

logger = logging.getLogger(__name__)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The exposition, or 403 (network), 401 (token), 405 (method), 503 (could not be read)."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse(
            error_body("method_not_allowed", f'Method "{request.method}" not allowed.'),
            status=status.HTTP_405_METHOD_NOT_ALLOWED,
        )
        response["Allow"] = "GET, HEAD"
        return response
    if not client_network_allowed(request):
        return JsonResponse(
            error_body("permission_denied", "Metrics are not served to this address (METRICS_ALLOWED_NETWORKS)."),
            status=status.HTTP_403_FORBIDDEN,
        )
    if refusal := token_refusal(request):
        return refusal
    try:
        body = metrics.exposition()
    except Exception:
        logger.exception("metrics: the exposition failed")
        return JsonResponse(
            error_body("metrics_unavailable", "The metrics could not be read; it has been logged."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def client_network_allowed(request: HttpRequest) -> bool:
    """Whether the client's address is in METRICS_ALLOWED_NETWORKS (always, when that is empty)."""
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:  # a unix socket, or no address at all
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 client of a dual-stack socket
    return any(address in network for network in networks)


def token_refusal(request: HttpRequest) -> JsonResponse | None:
    """None when METRICS_TOKEN is unset or the request bears it, else the 401 to answer."""
    token = settings.METRICS_TOKEN
    if not token:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    if not given:
        body = error_body("not_authenticated", "Send Authorization: Bearer <METRICS_TOKEN>.")
    else:
        body = error_body("authentication_failed", "The metrics token is not valid.")
    response = JsonResponse(body, status=status.HTTP_401_UNAUTHORIZED)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
