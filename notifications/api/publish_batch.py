"""POST /api/notifications/batch/: many publishes in one request, for integrations that produce them in bulk.

Thin, like the single publish (notifications.py): parse, call `notification_publish_batch_requested`, shape the
answer. The same permission and throttles; the publishing rate counts each notification, not the request.
"""

from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import refusal
from core.api.schema import error_response
from core.api.throttling import PublishRateThrottle
from core.errors import DomainError
from notifications import services
from notifications.api.backpressure import HubBackpressureThrottle
from notifications.api.permissions import CanPublishNotifications
from notifications.api.serializers import PublishBatchResultSerializer, PublishBatchSerializer


class PublishBatchRateThrottle(PublishRateThrottle):
    """The publishing rate (the single publish's counter): a batch counts as many publishes as it holds
    notifications, and one with more than are left is refused whole (429), publishing and counting nothing."""

    def requests_counted(self, request, view) -> int:
        # Reading the body here raises what the view would (malformed JSON, too large): the client gets that answer.
        items = request.data.get("notifications") if isinstance(request.data, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= settings.NOTIFY_PUBLISH_BATCH_MAX:
            return 1  # the view answers 400: the request counts as one
        return len(items)


class PublishBatchView(APIView):
    permission_classes = [IsAuthenticated, CanPublishNotifications]
    throttle_classes = [PublishBatchRateThrottle, HubBackpressureThrottle]

    @extend_schema(
        tags=["notifications"],
        summary="Publish several notifications at once (holders of the publishing permission, within their scope)",
        description="Each item is what `POST /api/notifications/` takes, with its own optional `idempotency_key` "
        "(the same keys as the Idempotency-Key header). The batch is one transaction; each item is answered on "
        "its own, in order, with the status and body a single publish of it would have had. A refused item "
        "publishes nothing and does not stop the others. The answer is 200 whatever became of the items; a "
        "4xx means the batch as a whole was refused and nothing was published. Each notification counts "
        "against the publishing rate.",
        request=PublishBatchSerializer,
        responses={
            200: PublishBatchResultSerializer,
            400: error_response(
                "`notifications` is missing, not a list, empty or longer than NOTIFY_PUBLISH_BATCH_MAX; nothing "
                "was published. (An invalid item is answered in its result.)"
            ),
            403: error_response("The caller may not publish (`permission_denied`); nothing was published."),
            429: error_response(
                "More notifications than the publishing rate has left, or the hub is catching up: nothing was "
                "published; send the same batch (with its keys) after Retry-After seconds."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        batch = PublishBatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        outcomes = services.notification_publish_batch_requested(
            published_by_id=cast(User, request.user).pk, items=batch.validated_data["notifications"]
        )
        results = [_item_result(index, outcome) for index, outcome in enumerate(outcomes)]
        return Response(PublishBatchResultSerializer({"results": results}).data)


def _item_result(index: int, outcome: services.PublishBatchOutcome) -> dict[str, Any]:
    if outcome.result is not None:
        return {"index": index, "status": 200 if outcome.result.repeated else 201, "notification": outcome.result}
    # The service refuses with its domain's errors; an invalid item's body with the serializer's ValidationError.
    assert isinstance(outcome.refused, DomainError | exceptions.APIException)
    status_code, error = refusal(outcome.refused)
    return {"index": index, "status": status_code, "error": error}
