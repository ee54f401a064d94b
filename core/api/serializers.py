"""Building blocks for request and response serializers of every app."""

import threading
from functools import cached_property
from typing import Any

from django.contrib.auth.models import AbstractUser
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer[Any]):
    """Refuses fields it does not accept, so a typo or a server-owned field (status, recipient, ...) is a 400.

    Only writable fields are accepted: read-only ones are answers, never input.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in writable)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


_fields_per_thread = threading.local()


class FieldsKeptPerThread(serializers.Serializer[Any]):
    """An input serializer whose fields each thread builds once, then reuses for every instance it validates.

    DRF deep-copies the declared fields for every serializer instance, so that an instance may change its own:
    a new instance of every field, nested serializers' fields included. For a publish that copy was a fifth of
    the request's CPU. An input serializer that never changes its fields needs no copy: fields keep no state
    from one validation to the next (only their binding to the serializer, which each instance renews), and a
    thread validates one instance at a time, so kept per thread they are never used by two validations at once.
    """

    @cached_property
    def fields(self) -> Any:  # DRF's BindingDict
        kept: dict[type, Any] = _fields_per_thread.__dict__.setdefault("by_class", {})
        fields = kept.get(type(self))
        if fields is None:
            fields = kept[type(self)] = super().fields  # built and bound by DRF once
        else:
            fields.serializer = self  # the binding DRF would make anew: the same names, this parent
            for field in fields.values():
                field.parent = self
        return fields


@extend_schema_field(
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 150}]}
)
class IdOrNameField(serializers.Field[int | str, Any, int | str, Any]):
    """An object named by its integer id or by its name (username, department code): JSON numbers are ids."""

    default_error_messages = {
        "invalid": "Give an integer id or a name (string).",
        "blank": "A name cannot be blank.",
        "too_long": "A name has at most {max_length} characters.",
        "null_characters_not_allowed": "Null characters are not allowed.",
    }
    MAX_NAME_LENGTH = 150

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            if data < 1:
                self.fail("invalid")
            return data
        if not isinstance(data, str):
            self.fail("invalid")
        name = data.strip()
        if not name:
            self.fail("blank")
        if len(name) > self.MAX_NAME_LENGTH:
            self.fail("too_long", max_length=self.MAX_NAME_LENGTH)
        if "\x00" in name:
            self.fail("null_characters_not_allowed")
        return name

    def to_representation(self, value: int | str) -> int | str:
        return value


class ErrorSerializer(serializers.Serializer[Any]):
    """The body of every error response (see core/api/errors.py)."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, not_found, throttled.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    # drf-stubs sees this as replacing Serializer.fields; SerializerMetaclass takes declared fields out of the class.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Only when input was at fault: dotted field path → messages.",
    )


class UserSummarySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.SerializerMethodField()

    def get_name(self, user: AbstractUser) -> str:
        return user.get_full_name() or user.get_username()
