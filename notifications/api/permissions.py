"""Who may publish notifications through the API."""

from rest_framework.permissions import BasePermission

from notifications import selectors

PUBLISH_PERMISSION = "notifications.publish_notification"


class CanPublishNotifications(BasePermission):
    """Holders of `notifications.publish_notification` (superusers hold every permission); being staff is not
    enough. What they may publish is their scope's to say (services/publisher_scope.py)."""

    message = (
        "Publishing needs the notifications.publish_notification permission (and a publishing scope); "
        "a staff account alone is not enough."
    )

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        status = getattr(user, "publisher_status", None)  # read by PublisherJWTAuthentication with the user
        return status.may_publish if status is not None else selectors.user_may_publish(user)
