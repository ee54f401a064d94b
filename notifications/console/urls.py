"""The console's pages, mounted under /admin/console/ by the admin site (which wraps each in `admin_view`)."""

from django.urls import URLPattern, path

from notifications.console import dashboard, presence, why

urlpatterns: list[URLPattern] = [
    path("", dashboard.dashboard, name="console-dashboard"),
    path("dashboard.json", dashboard.dashboard_data, name="console-dashboard-data"),
    path("presence/", presence.online_now, name="console-presence"),
    path("presence/<str:username>/", presence.user_presence, name="console-presence-user"),
    path("why/", why.why_not_notified, name="console-why"),
]
