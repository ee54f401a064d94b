"""GET /healthz: can this process reach what it needs, and does its hub router receive? For load balancers
and orchestrators."""

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


class HealthView(APIView):
    """No credentials and no throttle: probes call it often. Reasons go to the log, not to the caller."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        tags=["health"],
        summary="Database, Redis and channel-layer reachability; the hub router receiving",
        responses={200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request: Request) -> Response:
        checks: dict[str, str] = {}
        failed: list[str] = []
        for name, check in health.checks().items():
            problem = check()
            checks[name] = "failed" if problem else "ok"
            if problem:
                failed.append(name)
                logger.warning("healthz: %s failed: %s", name, problem)
        body = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE if failed else status.HTTP_200_OK)
