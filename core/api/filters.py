"""Filter types shared by the apps' filter sets."""

from datetime import UTC, date, datetime
from typing import Any

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

BOOLEAN_CHOICES = [("true", "true"), ("false", "false")]


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(filters.TypedChoiceFilter):
    """`true` or `false`; anything else is a 400 (django-filter's BooleanFilter silently ignores bad values)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("choices", BOOLEAN_CHOICES)
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)


MAX_ID = 2**63 - 1


class IdFilter(filters.Filter):
    """An integer id (1 … 2**63-1); anything else is a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class _UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value: str | datetime | date | None) -> datetime | None:
        value = super().to_python(value)
        if value is None:
            return None
        try:
            # PostgreSQL refuses UTC offsets beyond ±15:59 that Python accepts.
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("This time is out of range.", code="invalid") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 time with any offset, compared in UTC."""

    field_class = _UtcIsoDateTimeField
