"""/api/notifications/: publish (service users, within their scope), the caller's inbox, and delivery status for
publishers.

Thin: each action parses input, calls one service or selector, and shapes the
answer. Another user's notification is a 404 whatever the action, because
every lookup starts from the caller's own rows.
"""

from typing import cast

from django.contrib.auth.models import User
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework_simplejwt.authentication import JWTAuthentication

from core.api.schema import error_response
from core.api.throttling import PublishRateThrottle
from notifications import explain, selectors, services
from notifications.api.backpressure import HubBackpressureThrottle
from notifications.api.filters import DeliveryStatusFilter, InboxFilter
from notifications.api.idempotency import (
    IDEMPOTENCY_KEY_FORMAT,
    IDEMPOTENCY_KEY_MESSAGE,
    IDEMPOTENCY_KEY_SCHEMA,
    canonical_hash,
)
from notifications.api.pagination import DeliveryStatusPagination
from notifications.api.permissions import CanPublishNotifications
from notifications.api.publisher_auth import PublisherJWTAuthentication
from notifications.api.serializers import (
    ActionRequestSerializer,
    ActionResultSerializer,
    DeliveryStatusSerializer,
    InboxItemSerializer,
    PublishedNotificationSerializer,
    PublishResultSerializer,
    PublishSerializer,
    ReadAllResultSerializer,
    UnreadCountSerializer,
)
from notifications.models import Delivery, Notification

IDEMPOTENCY_HEADER = "Idempotency-Key"

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_SCHEMA,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (e.g. a UUID), at most 255 printable ASCII characters. Retrying with the same key "
        "and the same body returns the first result with 200 and creates nothing; a different body is a 409."
    ),
)


@extend_schema_view(
    list=extend_schema(summary="My inbox, newest first", responses=InboxItemSerializer(many=True)),
    retrieve=extend_schema(summary="One notification of mine", responses=InboxItemSerializer),
)
@extend_schema(tags=["notifications"])
class NotificationViewSet(viewsets.GenericViewSet):
    serializer_class = InboxItemSerializer
    filterset_class = InboxFilter
    lookup_field = "notification_id"
    lookup_url_kwarg = "id"
    queryset = Delivery.objects.none()  # for schema introspection; get_queryset scopes to the caller

    def get_queryset(self):
        user = cast(User, self.request.user)  # signed in: IsAuthenticated
        if self.action == "list":
            return selectors.inbox_of(user.pk)
        return selectors.deliveries_of(user.pk)

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), CanPublishNotifications()]
        return super().get_permissions()

    def get_authenticators(self):
        authenticators = super().get_authenticators()
        request = getattr(self, "request", None)
        # The OpenAPI schema documents simplejwt's (the same Bearer token to a client); drf-spectacular marks its
        # views so. DRF calls this before it sets self.action: the action map names it.
        if getattr(self, "swagger_fake_view", False) or request is None:
            return authenticators
        if self.action_map.get(request.method.lower()) == "create":
            return [
                PublisherJWTAuthentication() if type(authenticator) is JWTAuthentication else authenticator
                for authenticator in authenticators
            ]
        return authenticators

    def get_throttles(self):
        if self.action == "create":
            return [PublishRateThrottle(), HubBackpressureThrottle()]
        return super().get_throttles()

    def get_object(self) -> Delivery:
        """The caller's delivery of the notification in the URL (no filters: they are for the list)."""
        notification_id = self._notification_id()
        return get_object_or_404(self.get_queryset(), notification_id=notification_id)

    def _notification_id(self):
        notification_id = selectors.parse_notification_id(self.kwargs[self.lookup_url_kwarg])
        if notification_id is None:
            raise NotFound()
        return notification_id

    # --- Inbox -------------------------------------------------------------------
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(InboxItemSerializer(page, many=True).data)

    def retrieve(self, request, id=None):
        return Response(InboxItemSerializer(self.get_object()).data)

    @extend_schema(summary="Acknowledge: a client of mine has it", request=None, responses=InboxItemSerializer)
    @action(detail=True, methods=["post"])
    def ack(self, request, id=None):
        services.delivery_acknowledge(user_id=request.user.pk, notification_id=self._notification_id())
        return Response(InboxItemSerializer(self.get_object()).data)

    @extend_schema(summary="Mark read (syncs my other connections)", request=None, responses=InboxItemSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, id=None):
        services.delivery_mark_read(user_id=request.user.pk, notification_id=self._notification_id())
        return Response(InboxItemSerializer(self.get_object()).data)

    @extend_schema(
        summary="Perform one of its actions (a NewTask's approve or reject; a publisher's own)",
        description="Runs as me, once: performing the same action again answers the first result with "
        "`already_performed: true` and changes nothing. A task's decision resolves the notification on all my "
        "devices (`resolved`); a publisher's action is recorded and the publisher called back. It reads the "
        "notification too.",
        parameters=[OpenApiParameter("action_id", str, OpenApiParameter.PATH, description="The action's id.")],
        request=ActionRequestSerializer,
        responses={
            200: ActionResultSerializer,
            400: error_response("No such action on it (`fields.action`), or a comment is missing (`fields.comment`)."),
            403: error_response("The workflow refuses: the task's step is not mine to decide."),
            404: error_response("No such notification of mine."),
            409: error_response(
                "Too late (`invalid_transition`: the task was decided, reassigned or withdrawn, or the notification "
                "retracted), or I performed another of its actions already (`already_performed`)."
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path=r"actions/(?P<action_id>[^/]+)", url_name="action")
    def perform_action(self, request, id=None, action_id=None):
        serializer = ActionRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.notification_action_perform(
            notification_id=self._notification_id(),
            user=request.user,
            action=action_id,
            comment=serializer.validated_data["comment"],
        )
        return Response(ActionResultSerializer(result).data)

    @extend_schema(summary="Mark everything read", request=None, responses=ReadAllResultSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        marked = services.deliveries_mark_all_read(user_id=request.user.pk)
        return Response({"marked_read": marked, "unread_count": selectors.unread_count(request.user.pk)})

    @extend_schema(summary="How many are unread", responses=UnreadCountSerializer)
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"unread_count": selectors.unread_count(request.user.pk)})

    # --- Publish -----------------------------------------------------------------
    @extend_schema(
        summary="Publish a notification (holders of the publishing permission, within their scope)",
        request=PublishSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: PublishResultSerializer,
            200: OpenApiResponse(
                PublishResultSerializer,
                description="What an earlier request with this key published.",
            ),
            400: error_response(
                "Invalid input, unknown recipients or reserved `data` keys (listed in `fields`); nothing was created."
            ),
            403: error_response(
                "The caller may not publish (`permission_denied`), or the publish reaches beyond the caller's "
                "publishing scope or uses a reserved event name (`outside_scope`, what is listed in `fields`); "
                "nothing was created."
            ),
            409: error_response("The Idempotency-Key was used with a different body."),
        },
    )
    def create(self, request):
        key = self._idempotency_key(request)
        request_hash = canonical_hash(request.data) if key is not None else ""
        if key is not None:
            earlier = services.notification_publish_repeated(
                published_by_id=request.user.pk, idempotency_key=key, request_hash=request_hash
            )
            if earlier is not None:  # answered before validating: the original input was valid then
                return self._publish_response(earlier)
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.notification_publish_requested(
            published_by_id=request.user.pk, idempotency_key=key, request_hash=request_hash, **serializer.validated_data
        )
        return self._publish_response(result)

    def _publish_response(self, result: services.PublishResult) -> Response:
        headers = {"Location": reverse("notification-deliveries", kwargs={"id": result.notification.pk})}
        if result.repeated:
            headers["Idempotent-Replayed"] = "true"
        return Response(
            PublishResultSerializer(result).data,
            status=status.HTTP_200_OK if result.repeated else status.HTTP_201_CREATED,
            headers=headers,
        )

    @staticmethod
    def _idempotency_key(request) -> str | None:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return None
        if not IDEMPOTENCY_KEY_FORMAT.match(key):
            raise ValidationError({IDEMPOTENCY_HEADER: [IDEMPOTENCY_KEY_MESSAGE]})
        return key

    @extend_schema(
        summary="Retract a notification I published: it leaves every recipient's devices",
        description="Its deliveries nobody read end `resolved` (resolution `retracted`): no resend, no push; "
        "connected clients get a `resolved` frame (SignalR `NotificationResolved`), a pushed one is replaced. "
        "Retracting again changes nothing.",
        request=None,
        responses={
            200: PublishedNotificationSerializer,
            404: error_response("No such notification published by the caller."),
        },
    )
    @action(detail=True, methods=["post"])
    def retract(self, request, id=None):
        notification_id = self._notification_id()
        services.notification_retract(notification_id=notification_id, by=request.user)
        notification = Notification.objects.select_related("published_by").get(pk=notification_id)
        return Response(PublishedNotificationSerializer(_published_summary(notification)).data)

    # --- Delivery status ---------------------------------------------------------
    @extend_schema(
        summary="Each recipient's delivery state and attempts (publisher and staff)",
        description="The answer to “why did this user not get it?”. Filter by `username` or `recipient` to see one. "
        "Each row's `explanation` says it in words: a `verdict`, a one-line `summary` and `details` in time order.",
        responses=DeliveryStatusSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=DeliveryStatusFilter,
        pagination_class=DeliveryStatusPagination,
        serializer_class=DeliveryStatusSerializer,
    )
    def deliveries(self, request, id=None):
        notification = get_object_or_404(
            selectors.notifications_published_visible_to(request.user).select_related("published_by"),
            pk=self._notification_id(),
        )
        deliveries = self.filter_queryset(selectors.delivery_status_of(notification.pk))
        page = self.paginate_queryset(deliveries) or []
        explanations = {
            delivery.pk: explanation
            for delivery, explanation in zip(page, explain.explain_deliveries(page), strict=True)
        }
        rows = DeliveryStatusSerializer(page, many=True, context={"explanations": explanations}).data
        response = self.get_paginated_response(rows)
        response.data["notification"] = PublishedNotificationSerializer(_published_summary(notification)).data
        return response


def _published_summary(notification: Notification) -> dict:
    counts = selectors.delivery_counts(notification.pk)
    return {
        "id": notification.pk,
        "event": notification.event,
        "title": notification.title,
        "priority": notification.priority,
        "created_at": notification.created_at,
        "expires_at": notification.expires_at,
        "subject": notification.subject,
        "resolved_at": notification.resolved_at,
        "resolution": notification.resolution,
        "published_by": notification.published_by,
        "recipient_count": sum(counts.by_status.values()),
        "by_status": counts.by_status,
        "pushed": counts.pushed,
    }
