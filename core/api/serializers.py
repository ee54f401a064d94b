"""Building blocks for request and response serializers of every app."""

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
