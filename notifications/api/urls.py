"""Routes of the notifications API (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from notifications.api.devices import DeviceViewSet
from notifications.api.notifications import NotificationViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = router.urls
