"""OpenAPI generation: every operation documents the errors it can answer with, in the one error shape.

The generic ones (401 and 429 wherever a user is required, 400/413/415 for
request bodies, 404 for object paths, 400 for bad filters or cursors) are
added here; views document their domain-specific ones (403, 409) with
`error_response`.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework.permissions import AllowAny

from core.api.serializers import ErrorSerializer


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        paginator = self._get_paginator() if self._is_list_view() else None
        for serializer in getattr(paginator, "schema_components", ()):
            self.resolve_serializer(serializer, direction)  # pages may embed more than their results
        for code, description in self._generic_errors().items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    error_response(description), str(code), direction=direction
                )
        return dict(sorted(responses.items()))

    def _generic_errors(self) -> dict[int, str]:
        errors: dict[int, str] = {}
        method = self.method.upper()
        if method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            errors[400] = "Invalid input: malformed JSON, wrong types or unknown fields (see `fields`)."
            errors[413] = "The request body is larger than the limit (API_MAX_BODY_BYTES)."
            errors[415] = "The body is not JSON (send Content-Type: application/json)."
        elif method == "GET" and self._is_list_view() and (self._get_paginator() or self.get_filter_backends()):
            errors[400] = "Invalid filter value or cursor (see `fields`)."
        if "{" in self.path:
            errors[404] = "No such object among those you may see."
        if not any(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            errors[401] = "Missing, invalid or expired credentials."
        if self.view.get_throttles():
            errors[429] = "Too many requests; retry after the number of seconds in the Retry-After header."
        return errors


class StrictInputSerializerExtension(OpenApiSerializerExtension):
    """Request bodies of StrictInputSerializers say what the server enforces: no other fields."""

    target_class = "core.api.serializers.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: SpectacularAutoSchema, direction: Direction) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        if "__doc__" not in type(self.target).__dict__ or not type(self.target).__doc__:
            schema.pop("description", None)  # not the base class's docstring on every component
        if direction == "request":
            schema["additionalProperties"] = False
        return schema
