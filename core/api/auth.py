"""Token endpoints: a username and password become a JWT pair; refresh and verify tokens.

simplejwt does the work; these subclasses refuse unknown fields like the rest
of the API, never answer 500 for a token of a deleted user, are throttled per
client address (and a password request per username too), and are documented with
their real request and response shapes.
"""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views

from core.api.schema import error_response
from core.api.serializers import StrictInputSerializer
from core.api.throttling import TokenRateThrottle, TokenUsernameRateThrottle


class TokenObtainPairSerializer(StrictInputSerializer, jwt_serializers.TokenObtainPairSerializer):
    pass


class TokenRefreshSerializer(StrictInputSerializer, jwt_serializers.TokenRefreshSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist:
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account") from None


class TokenVerifySerializer(StrictInputSerializer, jwt_serializers.TokenVerifySerializer):
    pass


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField(help_text="Send as `Authorization: Bearer <access>`; short-lived.")
    refresh = serializers.CharField(help_text="Trade at /api/auth/token/refresh/ for a new access token.")


class AccessTokenSerializer(serializers.Serializer[Any]):
    access = serializers.CharField()


class CredentialsSerializer(StrictInputSerializer):
    username = serializers.CharField()
    password = serializers.CharField()


class RefreshRequestSerializer(StrictInputSerializer):
    refresh = serializers.CharField()


class VerifyRequestSerializer(StrictInputSerializer):
    token = serializers.CharField()


class EmptySerializer(serializers.Serializer[Any]):
    pass


INVALID_CREDENTIALS = error_response("Wrong username or password, inactive account, or an invalid or expired token.")


class TokenObtainPairView(jwt_views.TokenObtainPairView):
    throttle_classes = [TokenRateThrottle, TokenUsernameRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Get an access and a refresh token",
        request=CredentialsSerializer,
        responses={200: TokenPairSerializer, 401: INVALID_CREDENTIALS},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


class TokenRefreshView(jwt_views.TokenRefreshView):
    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Trade a refresh token for a new access token",
        request=RefreshRequestSerializer,
        responses={200: AccessTokenSerializer, 401: INVALID_CREDENTIALS},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


class TokenVerifyView(jwt_views.TokenVerifyView):
    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        tags=["auth"],
        summary="Check that a token is valid",
        request=VerifyRequestSerializer,
        responses={200: EmptySerializer, 401: INVALID_CREDENTIALS},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)
