"""WebSocket routes of the hub, mounted by `notifyhub.asgi` behind the Origin guard."""

from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from notifications.hub.native import NativeHubConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NativeHubConsumer.as_asgi()),
    # Any other path: refuse the handshake (HTTP 403) instead of raising "No route found".
    re_path(r"", WebsocketDenier.as_asgi()),
]
