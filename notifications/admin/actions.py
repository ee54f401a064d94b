"""Actions: the callbacks publishers hear about performed actions on (edited here), and every performance (the
record of what a recipient did from a notification, and whether its publisher heard of it: view only)."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from notifications.admin.evidence import EvidenceAdmin
from notifications.console.times import at_second
from notifications.models import ActionCallback, ActionPerformance, person_name


@admin.register(ActionCallback)
class ActionCallbackAdmin(admin.ModelAdmin):
    list_display = ["publisher", "url", "updated_at"]
    search_fields = ["publisher__username", "url"]
    list_select_related = ["publisher"]
    autocomplete_fields = ["publisher"]
    fields = ["publisher", "url", "secret"]
    # Generated when the callback is added; the publisher copies it from here to check the signatures.
    readonly_fields = ["secret"]


@admin.register(ActionPerformance)
class ActionPerformanceAdmin(EvidenceAdmin):
    list_display = [
        "performed",
        "notification",
        "performer",
        "action",
        "outcome",
        "callback_status",
        "callback_attempts",
    ]
    list_filter = ["outcome", "callback_status", "action"]
    search_fields = ["user__username", "=notification__id", "action", "comment"]
    list_select_related = ["notification", "user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ActionPerformance]:
        return super().get_queryset(request).select_related("notification", "user")

    @admin.display(description="at", ordering="performed_at")
    def performed(self, performance: ActionPerformance) -> str:
        return at_second(performance.performed_at)

    @admin.display(description="by", ordering="user__username")
    def performer(self, performance: ActionPerformance) -> str:
        return person_name(performance.user)
