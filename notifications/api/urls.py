"""Routes of the notifications API (mounted under /api/)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from notifications.api.devices import DeviceViewSet
from notifications.api.notifications import NotificationViewSet
from notifications.api.preferences import PreferencesView
from notifications.api.publish_batch import PublishBatchView

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = [
    path("me/preferences/", PreferencesView.as_view(), name="my-preferences"),
    # Before the router's: its detail route would take "batch" for a notification's id.
    path("notifications/batch/", PublishBatchView.as_view(), name="notification-batch"),
    *router.urls,
]
