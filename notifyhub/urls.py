from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api import auth
from core.api.health import HealthView, LivenessView
from core.api.metrics import metrics_view
from notifications.hub.signalr.negotiate import negotiate

urlpatterns = [
    path("admin/", admin.site.urls),
    path("livez", LivenessView.as_view(), name="livez"),
    path("readyz", HealthView.as_view(), name="readyz"),
    path("healthz", HealthView.as_view(), name="healthz"),  # /readyz's older name, kept for existing probes
    path("api/auth/token/", auth.TokenObtainPairView.as_view(), name="token-obtain"),
    path("api/auth/token/refresh/", auth.TokenRefreshView.as_view(), name="token-refresh"),
    path("api/auth/token/verify/", auth.TokenVerifyView.as_view(), name="token-verify"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include("notifications.api.urls")),
    path("api/", include("workflow.api.urls")),
    # The SignalR hub's negotiate request (the hub itself is a WebSocket route); no trailing slash, as clients send it.
    path("hubs/workflow/negotiate", negotiate, name="signalr-negotiate"),
    # Prometheus scrapes, allowed by METRICS_ALLOWED_NETWORKS and METRICS_TOKEN (docs/metrics.md).
    path("metrics", metrics_view, name="metrics"),
    # The pages people use (sign-in, inbox, tasks, documents) and their socket's token: web/urls.py.
    path("", include("web.urls")),
]

# Unknown URLs and unhandled errors answer in the API's error shape (core/api/errors.py); under the pages' URLs
# a 404 is a page (web/errors.py).
handler400 = "core.api.errors.bad_request"
handler404 = "web.errors.not_found"
handler500 = "core.api.errors.server_error"
