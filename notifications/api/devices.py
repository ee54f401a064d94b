"""/api/devices/: the caller's app installs that receive FCM pushes when they are offline.

POST registers (or refreshes) the FCM token of one app install, GET lists the
caller's own devices, DELETE forgets one (on sign-out). Another user's device
is a 404, because every lookup starts from the caller's own rows.
"""

from typing import cast

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from core.api.serializers import StrictInputSerializer
from notifications import selectors, services
from notifications.models import Device


class DeviceSerializer(serializers.ModelSerializer):
    """A registered device as its owner sees it (inactive ones say why FCM refused their token)."""

    class Meta:
        model = Device
        fields = [
            "id",
            "platform",
            "app_install_id",
            "token",
            "active",
            "deactivated_reason",
            "created_at",
            "last_seen_at",
        ]
        read_only_fields = fields


class DeviceRegistrationSerializer(StrictInputSerializer):
    token = serializers.CharField(max_length=512, help_text="The FCM registration token the app got from Firebase.")
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    app_install_id = serializers.CharField(
        max_length=128, help_text="A stable id of this app install; registering again from it replaces its token."
    )

    def validate_token(self, value: str) -> str:
        if any(character.isspace() for character in value):
            raise serializers.ValidationError("An FCM token has no spaces or line breaks.")
        return value


@extend_schema_view(
    list=extend_schema(summary="My devices"),
    destroy=extend_schema(summary="Forget one of my devices", responses={204: None}),
)
@extend_schema(tags=["devices"])
class DeviceViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = DeviceSerializer
    pagination_class = None  # a user has a handful of devices
    lookup_value_regex = r"\d+"
    queryset = Device.objects.none()  # for schema introspection; get_queryset scopes to the caller

    def get_queryset(self):
        return selectors.devices_of(cast(User, self.request.user).pk)  # signed in: IsAuthenticated

    @extend_schema(
        summary="Register this app install's FCM token",
        request=DeviceRegistrationSerializer,
        responses={
            201: OpenApiResponse(DeviceSerializer, description="A new install."),
            200: OpenApiResponse(DeviceSerializer, description="A known install: its token was replaced."),
        },
    )
    def create(self, request, *args, **kwargs) -> Response:
        registration = DeviceRegistrationSerializer(data=request.data)
        registration.is_valid(raise_exception=True)
        device, created = services.device_register(user_id=request.user.pk, **registration.validated_data)
        return Response(
            DeviceSerializer(device).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def perform_destroy(self, instance: Device) -> None:
        services.device_delete(user_id=cast(User, self.request.user).pk, device_id=instance.pk)
