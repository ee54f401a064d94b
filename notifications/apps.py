from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        """Connect the workflow signals to the notification services, and add the hub's checks to /healthz."""
        from core import health
        from notifications import receivers
        from notifications.health import check_channel_layer, check_hub_router

        receivers.connect()
        health.register("channel_layer", check_channel_layer)
        health.register("hub_router", check_hub_router)
