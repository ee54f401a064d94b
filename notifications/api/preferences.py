"""/api/me/preferences/: how the caller wants to be notified (time zone, quiet hours, push, per event type).

GET answers the settings in force; PUT replaces them (an event type it does not list goes back to the
organisation's default); PATCH changes only what it names. The rules live in
notifications/services/preferences.py, which the settings page uses too.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.serializers import StrictInputSerializer
from notifications.preferences import Preferences, preferences_of
from notifications.services.preferences import GENERAL_FIELDS, EventChange, preferences_update

TIME_FORMAT = "%H:%M"


class EventDefaultSerializer(serializers.Serializer[Any]):
    push = serializers.BooleanField(source="default_push")
    muted = serializers.BooleanField(source="default_muted")


class EventSettingSerializer(serializers.Serializer[Any]):
    event = serializers.CharField()
    description = serializers.CharField()
    mandatory = serializers.BooleanField(help_text="Neither muted nor push-off: both choices are ignored.")
    push = serializers.BooleanField(source="effective_push", help_text="Pushed when you are offline (in force).")
    muted = serializers.BooleanField(source="effective_muted", help_text="Not delivered to you at all (in force).")
    custom = serializers.SerializerMethodField(help_text="You chose something; false: the organisation's default.")
    default = EventDefaultSerializer(source="*", help_text="The organisation's default for this event type.")

    def get_custom(self, choice) -> bool:
        return choice.push is not None or choice.muted is not None


class PreferencesSerializer(serializers.Serializer[Any]):
    time_zone = serializers.CharField(help_text="IANA name; quiet hours are read on its wall clock.")
    quiet_hours_start = serializers.TimeField(format=TIME_FORMAT, allow_null=True)
    quiet_hours_end = serializers.TimeField(
        format=TIME_FORMAT, allow_null=True, help_text="Before the start: the window crosses midnight."
    )
    urgent_breaks_through = serializers.BooleanField()
    push_enabled = serializers.BooleanField()
    events = EventSettingSerializer(many=True)


class EventChoiceInputSerializer(StrictInputSerializer):
    event = serializers.CharField(max_length=64)
    push = serializers.BooleanField(
        required=False, allow_null=True, help_text="true/false: your choice; null: the default; left out: unchanged."
    )
    muted = serializers.BooleanField(required=False, allow_null=True, help_text="As `push`.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "event" not in attrs:  # a PATCH makes every field optional, but an item names its event type
            raise serializers.ValidationError({"event": ["This field is required."]})
        return attrs


class PreferencesInputSerializer(StrictInputSerializer):
    time_zone = serializers.CharField(max_length=64)
    quiet_hours_start = serializers.TimeField(allow_null=True, help_text="HH:MM in your time zone; null: none.")
    quiet_hours_end = serializers.TimeField(allow_null=True)
    urgent_breaks_through = serializers.BooleanField()
    push_enabled = serializers.BooleanField()
    events = EventChoiceInputSerializer(many=True)


@extend_schema(tags=["preferences"])
class PreferencesView(APIView):
    @extend_schema(summary="My notification preferences", responses=PreferencesSerializer)
    def get(self, request) -> Response:
        return Response(PreferencesSerializer(preferences_of(request.user.pk)).data)

    @extend_schema(
        summary="Replace my notification preferences",
        request=PreferencesInputSerializer,
        responses=PreferencesSerializer,
    )
    def put(self, request) -> Response:
        return self._update(request, replace=True)

    @extend_schema(
        summary="Change some of my notification preferences",
        request=PreferencesInputSerializer(partial=True),
        responses=PreferencesSerializer,
    )
    def patch(self, request) -> Response:
        return self._update(request, replace=False)

    def _update(self, request, *, replace: bool) -> Response:
        given = PreferencesInputSerializer(data=request.data, partial=not replace)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        events = [
            EventChange(
                event=item["event"],
                push=item.get("push"),
                muted=item.get("muted"),
                keep=frozenset(name for name in ("push", "muted") if name not in item),
            )
            for item in data.get("events", [])
        ]
        changes = {name: data[name] for name in GENERAL_FIELDS if name in data}
        preferences: Preferences = preferences_update(
            user_id=request.user.pk, changes=changes, events=events if "events" in data else None, replace=replace
        )
        return Response(PreferencesSerializer(preferences).data)
