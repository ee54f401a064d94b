"""Routes of the notifications API (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from notifications.api.notifications import NotificationViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = router.urls
