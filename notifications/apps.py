from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        """Connect the workflow signals to the notification services (once, at start)."""
        from notifications import receivers

        receivers.connect()
