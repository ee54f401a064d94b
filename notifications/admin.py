"""Admin: what was published, and for every delivery, where it got to and why; who may publish what.

Deliveries and attempts are evidence, so they are read-only here; the only
write is "retry now", which hands open deliveries back to the retry sweep.
Publisher scopes are edited here: without one, a holder of the publishing
permission may publish nothing.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.postgres.forms import SimpleArrayField
from django.db.models import Count, QuerySet

from notifications import selectors
from notifications.models import (
    Delivery,
    DeliveryAttempt,
    Device,
    Notification,
    PublisherScope,
    validate_event_pattern,
)
from notifications.services import deliveries_retry_now

DELIVERY_FIELDS = (
    "notification",
    "recipient",
    "status",
    "status_label",
    "failure_reason",
    "last_error",
    "push_simulated",
    "attempts",
    "push_attempts",
    "next_attempt_at",
    "created_at",
    "sent_at",
    "acknowledged_at",
    "read_at",
    "pushed_at",
    "failed_at",
    "push_claimed_by",
    "push_claimed_until",
    "updated_at",
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = (
        "recipient",
        "outcome",
        "attempts",
        "push_attempts",
        "sent_at",
        "acknowledged_at",
        "read_at",
        "pushed_at",
        "failed_at",
    )
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="status")
    def outcome(self, delivery: Delivery) -> str:
        return delivery.status_label


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "title", "priority", "published_by", "document", "expires_at"]
    list_filter = ["event", "priority"]
    search_fields = ["id", "title", "body", "event"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "created_at"]
    list_select_related = ["published_by", "document"]
    inlines = [DeliveryInline]


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ("created_at", "channel", "outcome", "device", "error")
    readonly_fields = fields

    def get_queryset(self, request) -> QuerySet[DeliveryAttempt]:
        return super().get_queryset(request).select_related("device")


class PushSimulatedFilter(admin.SimpleListFilter):
    title = "push"
    parameter_name = "push"

    def lookups(self, request, model_admin):
        return [("real", "Pushed through FCM"), ("simulated", "Simulated (log backend)")]

    def queryset(self, request, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        # Whatever the status now: a delivery acknowledged after its push was pushed all the same.
        if self.value() == "real":
            return queryset.filter(pushed_at__isnull=False, push_simulated=False)
        if self.value() == "simulated":
            return queryset.filter(pushed_at__isnull=False, push_simulated=True)
        return queryset


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "notification",
        "recipient",
        "outcome",
        "attempts",
        "push_attempts",
        "next_attempt_at",
        "last_error_summary",
        "created_at",
    ]
    list_filter = ["status", "failure_reason", PushSimulatedFilter, "notification__event"]
    search_fields = ["recipient__username", "notification__id", "notification__title"]
    date_hierarchy = "created_at"
    list_select_related = ["notification", "recipient"]
    fields = DELIVERY_FIELDS
    readonly_fields = DELIVERY_FIELDS
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def outcome(self, delivery: Delivery) -> str:
        return delivery.status_label

    @admin.display(description="last error")
    def last_error_summary(self, delivery: Delivery) -> str:
        return delivery.last_error[:80]

    @admin.action(description="Retry selected open deliveries at the next sweep")
    def retry_now(self, request, queryset: QuerySet[Delivery]) -> None:
        changed = deliveries_retry_now(delivery_ids=queryset.values_list("id", flat=True))
        self.message_user(request, f"{changed} open deliveries will be retried at the next sweep.", messages.SUCCESS)


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = ["created_at", "delivery", "channel", "outcome", "device", "error"]
    list_filter = ["channel", "outcome"]
    search_fields = ["delivery__recipient__username", "delivery__notification__id", "error"]
    list_select_related = ["delivery", "device"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["user", "platform", "app_install_id", "active", "deactivated_reason", "last_seen_at"]
    list_filter = ["platform", "active", "deactivated_reason"]
    search_fields = ["user__username", "app_install_id", "token"]
    list_select_related = ["user"]


class EventPatternsField(SimpleArrayField):
    """Event name patterns as a textarea, one a line; blank lines are ignored."""

    def __init__(self, *, base_field: forms.CharField, **kwargs) -> None:
        kwargs.pop("delimiter", None)
        kwargs.pop("max_length", None)
        # The model's validators again, here: errors the model raises for an array item reach the form without
        # their text (ModelForm swaps in the form field's "Item n did not validate:" message).
        base_field.validators.append(validate_event_pattern)
        super().__init__(base_field, delimiter="\n", widget=forms.Textarea(attrs={"rows": 5, "cols": 40}), **kwargs)

    def to_python(self, value):
        lines = [line.strip() for line in (value or "").splitlines()]
        return super().to_python("\n".join(line for line in lines if line))


class PublisherScopeForm(forms.ModelForm):
    class Meta:
        model = PublisherScope
        fields = ["publisher", "all_recipients", "departments", "users", "events", "may_attach_documents"]
        field_classes = {"events": EventPatternsField}


@admin.register(PublisherScope)
class PublisherScopeAdmin(admin.ModelAdmin):
    form = PublisherScopeForm
    list_display = [
        "publisher",
        "all_recipients",
        "department_count",
        "user_count",
        "event_patterns",
        "may_attach_documents",
    ]
    list_filter = ["all_recipients", "may_attach_documents"]
    search_fields = ["publisher__username"]
    list_select_related = ["publisher"]
    autocomplete_fields = ["publisher", "users"]
    filter_horizontal = ["departments"]
    readonly_fields = ["publishing_permission"]
    fieldsets = [
        (None, {"fields": ["publisher", "publishing_permission"]}),
        ("Recipients", {"fields": ["all_recipients", "departments", "users"]}),
        ("Events and documents", {"fields": ["events", "may_attach_documents"]}),
    ]

    def get_queryset(self, request) -> QuerySet[PublisherScope]:
        return (
            super()
            .get_queryset(request)
            .annotate(department_total=Count("departments", distinct=True), user_total=Count("users", distinct=True))
        )

    @admin.display(description="departments", ordering="department_total")
    def department_count(self, scope: PublisherScope) -> int:
        return scope.department_total  # type: ignore[attr-defined]  # annotated in get_queryset

    @admin.display(description="users", ordering="user_total")
    def user_count(self, scope: PublisherScope) -> int:
        return scope.user_total  # type: ignore[attr-defined]  # annotated in get_queryset

    @admin.display(description="events")
    def event_patterns(self, scope: PublisherScope) -> str:
        return ", ".join(scope.events) or "none"

    @admin.display(description="publishing permission")
    def publishing_permission(self, scope: PublisherScope) -> str:
        """Why a scope may still publish nothing: the scope limits, the permission grants."""
        if scope.pk is None:
            return "Give the user notifications.publish_notification too (Users › user permissions)."
        if scope.publisher.is_superuser:
            return "Superuser: may publish to anyone; this scope is not consulted."
        if selectors.user_may_publish(scope.publisher):
            return "Holds notifications.publish_notification: may publish within this scope."
        return "Missing: grant notifications.publish_notification (Users › user permissions), or it publishes nothing."
