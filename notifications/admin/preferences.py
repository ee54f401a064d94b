"""Preferences: the organisation's defaults per event type, edited here; each user's choices, shown read-only.

A user's choices are theirs to make (the settings page, /api/me/preferences/); an operator sees them here to
answer "why was nothing pushed to her?", next to the delivery's own explanation.
"""

from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import format_html, format_html_join

from notifications.models import EventPreference, EventTypePolicy, UserPreferences


@admin.register(EventTypePolicy)
class EventTypePolicyAdmin(admin.ModelAdmin):
    list_display = ["event", "description", "mandatory", "default_push", "default_muted", "choices"]
    list_filter = ["mandatory", "default_push", "default_muted"]
    search_fields = ["event", "description"]
    fields = ["event", "description", "mandatory", "default_push", "default_muted"]

    def get_queryset(self, request) -> QuerySet[EventTypePolicy]:
        # How many users made a choice of their own for each event type: one subquery, not a count per row.
        counted = (
            EventPreference.objects.filter(event=OuterRef("event"))
            .order_by()
            .values("event")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return super().get_queryset(request).annotate(choice_count=Coalesce(Subquery(counted), 0))

    @admin.display(description="users' choices", ordering="choice_count")
    def choices(self, policy: EventTypePolicy) -> int:
        return policy.choice_count  # type: ignore[attr-defined]  # annotated in get_queryset


@admin.register(UserPreferences)
class UserPreferencesAdmin(admin.ModelAdmin):
    list_display = ["user", "time_zone", "quiet_hours", "urgent_breaks_through", "push_enabled", "event_choices"]
    list_filter = ["push_enabled", "urgent_breaks_through", "time_zone"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user"]
    readonly_fields = fields = (
        "user",
        "time_zone",
        "quiet_hours_start",
        "quiet_hours_end",
        "urgent_breaks_through",
        "push_enabled",
        "event_choice_list",
    )

    def get_queryset(self, request) -> QuerySet[UserPreferences]:
        return super().get_queryset(request).annotate(event_choice_count=Count("user__event_preferences"))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="quiet hours")
    def quiet_hours(self, preferences: UserPreferences) -> str:
        if preferences.quiet_hours_start is None or preferences.quiet_hours_end is None:
            return "none"
        return f"{preferences.quiet_hours_start:%H:%M}–{preferences.quiet_hours_end:%H:%M}"

    @admin.display(description="event type choices")
    def event_choice_list(self, preferences: UserPreferences) -> str:
        """The user's own choices per event type (the others follow the organisation's defaults)."""
        choices = EventPreference.objects.filter(user_id=preferences.user_id).order_by("event")
        if not choices:
            return "none: every event type follows the organisation's default"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}: {}, {}</li>",
                (
                    (
                        choice.event,
                        "push default" if choice.push is None else "push on" if choice.push else "push off",
                        "mute default" if choice.muted is None else "muted" if choice.muted else "shown",
                    )
                    for choice in choices
                ),
            ),
        )

    @admin.display(description="event types chosen", ordering="event_choice_count")
    def event_choices(self, preferences: UserPreferences) -> int:
        return preferences.event_choice_count  # type: ignore[attr-defined]  # annotated in get_queryset
