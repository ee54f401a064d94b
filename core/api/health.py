"""Probes for load balancers and orchestrators.

GET /livez: the process serves HTTP (liveness: restart it when this fails). No I/O at all.
GET /readyz (and /healthz, its older name): can this process reach what it needs, and does its hub router
receive? (readiness: send it no traffic while this fails). Answered from core.health.readiness(): the checks run
at most once per READINESS_MAX_AGE seconds per process on the process's own clients, whoever asks how often.
"""

import logging
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import health

logger = logging.getLogger(__name__)


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    checks = serializers.DictField(
        child=serializers.ChoiceField(choices=["ok", "failed"]), help_text="database, redis, channel_layer, hub_router"
    )
    failed = serializers.ListField(child=serializers.CharField(), help_text="The parts that did not answer.")


class LivenessSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ok"])


class LivenessView(APIView):
    """No credentials, no throttle and no I/O: answering is the whole check."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(tags=["health"], summary="The process serves HTTP (liveness)", responses={200: LivenessSerializer})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class HealthView(APIView):
    """No credentials and no throttle: probes call it often, and the checks' results are shared for
    READINESS_MAX_AGE seconds. Reasons go to the log, not to the caller."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        tags=["health"],
        summary="Database, Redis and channel-layer reachability; the hub router receiving (readiness)",
        responses={200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request: Request) -> Response:
        checks: dict[str, str] = {}
        failed: list[str] = []
        for name, problem in health.readiness().items():
            checks[name] = "failed" if problem else "ok"
            if problem:
                failed.append(name)
                logger.warning("readiness: %s failed: %s", name, problem)
        body = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE if failed else status.HTTP_200_OK)
