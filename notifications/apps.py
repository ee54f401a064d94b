from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        """Connect the workflow signals to the notification services, the SignalR CORS rule, /healthz's checks and
        what /metrics reads at scrape time; user changes forget publishers' remembered answers."""
        from corsheaders.signals import check_request_enabled

        from core import health
        from notifications import metrics, receivers
        from notifications.api import publisher_auth
        from notifications.health import check_channel_layer, check_hub_router
        from notifications.hub.signalr.negotiate import cors_request_allowed

        receivers.connect()
        publisher_auth.connect_receivers()
        check_request_enabled.connect(cors_request_allowed)
        health.register("channel_layer", check_channel_layer)
        health.register("hub_router", check_hub_router)
        metrics.register_scrape_collectors()
