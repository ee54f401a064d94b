"""Routes of the notifications API (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from notifications.api.devices import DeviceViewSet

router = SimpleRouter()
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = router.urls
