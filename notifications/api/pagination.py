"""Pagination of the delivery status list: in recipient order, with the notification's summary on every page."""

from notifications.api.serializers import PublishedNotificationSerializer
from notifyhub.api.pagination import NewestFirstCursorPagination


class DeliveryStatusPagination(NewestFirstCursorPagination):
    ordering = ("id",)  # deliveries are written in recipient id order
    page_size = 100
    max_page_size = 1_000
    schema_components = [PublishedNotificationSerializer]  # registered by notifyhub.api.schema.AutoSchema

    def get_paginated_response_schema(self, schema: dict) -> dict:
        response = super().get_paginated_response_schema(schema)
        response["properties"]["notification"] = {"$ref": "#/components/schemas/PublishedNotification"}
        response["required"] = [*response.get("required", []), "notification"]
        return response
