"""WebSocket routes of the hub, mounted by `notifyhub.asgi` behind the Origin guard."""

from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from notifications.hub.native import NativeHubConsumer
from notifications.hub.signalr.consumer import SignalRHubConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NativeHubConsumer.as_asgi()),
    # SignalR clients append nothing to the hub URL they were given, so accept it with or without a slash.
    re_path(r"^hubs/workflow/?$", SignalRHubConsumer.as_asgi()),
    # Any other path: refuse the handshake (HTTP 403) instead of raising "No route found".
    re_path(r"", WebsocketDenier.as_asgi()),
]
