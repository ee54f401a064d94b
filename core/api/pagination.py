"""Cursor pagination, newest first, for every list endpoint.

Cursors stay stable while new rows arrive (an inbox grows at the top), and a
malformed cursor is a 400 on the `cursor` parameter rather than DRF's 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination

if TYPE_CHECKING:  # rest_framework.views imports the pagination class named in settings: this module
    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.views import APIView

INVALID_CURSOR = {"cursor": ["Invalid cursor; use the `next` or `previous` link of a previous page."]}


class NewestFirstCursorPagination(CursorPagination):
    ordering: tuple[str, ...] = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            # A well-formed cursor whose position is not a value of the ordering field.
            raise ValidationError(INVALID_CURSOR) from None

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(INVALID_CURSOR) from None
