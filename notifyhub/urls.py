from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from notifications.hub.signalr.negotiate import negotiate
from notifyhub.api import auth
from notifyhub.api.health import HealthView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("api/auth/token/", auth.TokenObtainPairView.as_view(), name="token-obtain"),
    path("api/auth/token/refresh/", auth.TokenRefreshView.as_view(), name="token-refresh"),
    path("api/auth/token/verify/", auth.TokenVerifyView.as_view(), name="token-verify"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include("notifications.api.urls")),
    path("api/", include("workflow.api.urls")),
    # The SignalR hub's negotiate request (the hub itself is a WebSocket route); no trailing slash, as clients send it.
    path("hubs/workflow/negotiate", negotiate, name="signalr-negotiate"),
]

# Unknown URLs and unhandled errors answer in the API's error shape (notifyhub/api/errors.py).
handler400 = "notifyhub.api.errors.bad_request"
handler404 = "notifyhub.api.errors.not_found"
handler500 = "notifyhub.api.errors.server_error"
