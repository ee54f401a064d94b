"""Publisher scopes, edited here: without one, a holder of the publishing permission may publish nothing."""

from django import forms
from django.contrib import admin
from django.contrib.postgres.forms import SimpleArrayField
from django.db.models import Count, QuerySet

from notifications import selectors
from notifications.models import PublisherScope, validate_event_pattern


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
