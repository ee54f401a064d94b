"""Who may publish notifications through the API."""

from rest_framework.permissions import BasePermission

from notifications import selectors

PUBLISH_PERMISSION = "notifications.publish_notification"


class CanPublishNotifications(BasePermission):
    """Service users granted `notifications.publish_notification`, and staff."""

    message = "Publishing needs the notifications.publish_notification permission or a staff account."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and selectors.user_may_publish(user))
