"""Pagination of the delivery status list: in recipient order, with the notification's summary on every page."""

from core.api.pagination import NewestFirstCursorPagination
from notifications.api.serializers import PublishedNotificationSerializer


class DeliveryStatusPagination(NewestFirstCursorPagination):
    ordering = ("id",)  # deliveries are written in recipient id order
    page_size = 100
    max_page_size = 1_000
    schema_components = [PublishedNotificationSerializer]  # registered by core.api.schema.AutoSchema

    def get_paginated_response_schema(self, schema: dict) -> dict:
        response = super().get_paginated_response_schema(schema)
        response["properties"]["notification"] = {"$ref": "#/components/schemas/PublishedNotification"}
        response["required"] = [*response.get("required", []), "notification"]
        return response
