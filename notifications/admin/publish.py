"""The notification list's "Add": publish a notification as the signed-in admin, as the API would.

It goes through `notification_publish_requested`, the API's service: the same validation, the same publisher
scope (a superuser may publish to anyone; anyone else needs `notifications.publish_notification` and a scope),
the same reserved names. What the service refuses comes back as form errors on the field at fault. A publish
that would reach nobody (no recipient chosen, or none of them active) is a form error too: never a notification
without deliveries.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from notifications import report, selectors, services
from notifications.api.serializers import MAX_BODY_LENGTH
from notifications.errors import NotificationError
from notifications.models import EVENT_NAME_VALIDATOR, Notification, PublisherScope
from workflow.models import Department, Document

# The service's error fields (the API's input paths) -> this form's fields.
_ERROR_FIELDS = {
    "event": "event",
    "recipients.users": "users",
    "recipients.departments": "departments",
    "document_id": "document",
}

FIELDSETS = [
    (None, {"fields": ["event", "title", "body", "priority"]}),
    ("Recipients", {"fields": ["users", "departments"]}),
    ("Optional", {"fields": ["document", "expires_at"]}),
]


def may_publish(user: Any) -> bool:
    """The API's rule: a superuser, or a holder of `notifications.publish_notification` (its scope limits it)."""
    return bool(user.is_authenticated and user.is_staff and selectors.user_may_publish(user))


class PublishForm(forms.Form):
    event = forms.CharField(
        max_length=64,
        validators=[EVENT_NAME_VALIDATOR],
        help_text="The client handler name, e.g. InvoiceOverdue. Names the system uses (NewTask, …) are refused.",
    )
    title = forms.CharField(max_length=Notification._meta.get_field("title").max_length)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), required=False, max_length=MAX_BODY_LENGTH
    )
    priority = forms.ChoiceField(choices=Notification.Priority.choices, initial=Notification.Priority.NORMAL)
    users = forms.ModelMultipleChoiceField(
        get_user_model().objects.all(),
        required=False,
        # Any many-to-many to users will do for the widget: it names the field the autocomplete view searches.
        widget=AutocompleteSelectMultiple(PublisherScope._meta.get_field("users"), admin.site),
        help_text="Type a name or username.",
    )
    departments = forms.ModelMultipleChoiceField(
        Department.objects.all(),
        required=False,
        widget=AutocompleteSelectMultiple(PublisherScope._meta.get_field("departments"), admin.site),
        help_text="Every active member receives it (once, even if also chosen by name).",
    )
    document = forms.ModelChoiceField(
        Document.objects.all(),
        required=False,
        widget=AutocompleteSelect(Notification._meta.get_field("document"), admin.site),
        help_text="The workflow document it is about, if any.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
        input_formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"],
        help_text="Not delivered after this time. Empty: never expires.",
    )

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return expires_at

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        users, departments = cleaned.get("users"), cleaned.get("departments")
        if users is None or departments is None:
            return cleaned  # a field error already says what is wrong
        if not users and not departments:
            raise forms.ValidationError("Choose at least one user or department: a notification needs recipients.")
        if not report.has_active_recipients(
            user_ids=[user.pk for user in users], department_ids=[department.pk for department in departments]
        ):
            raise forms.ValidationError(
                "Nobody would receive it: none of the chosen users, and no member of the chosen departments, is active."
            )
        return cleaned

    def add_service_error(self, error: NotificationError) -> None:
        """The service's refusal, on the field it names (the whole form if none)."""
        fields = error.fields() or {}
        placed = False
        for path, field_messages in fields.items():
            field = _ERROR_FIELDS.get(path)
            if field is not None:
                for message in field_messages:
                    self.add_error(field, message)
                placed = True
        if not placed:
            self.add_error(None, error.message)


def publish_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """GET: the form; POST: publish as the signed-in admin, then the new notification's page."""
    if not may_publish(request.user):
        raise PermissionDenied("Publishing needs notifications.publish_notification (or a superuser).")
    form = PublishForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        publisher_id = request.user.pk
        assert publisher_id is not None  # may_publish: signed in
        try:
            result = _publish(form.cleaned_data, published_by_id=publisher_id)
        except NotificationError as error:
            form.add_service_error(error)
        else:
            count = result.recipient_count
            messages.success(request, f"Published to {count} recipient{'' if count == 1 else 's'}.")
            return HttpResponseRedirect(
                reverse("admin:notifications_notification_change", args=[result.notification.pk])
            )
    opts = model_admin.model._meta
    admin_form = helpers.AdminForm(form, FIELDSETS, {}, model_admin=model_admin)  # type: ignore[arg-type]  # any form renders
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Publish a notification",
        "subtitle": None,
        "opts": opts,
        "adminform": admin_form,
        "media": model_admin.media + admin_form.media,
        "errors": helpers.AdminErrorList(form, []),  # type: ignore[arg-type]  # any form renders
        "has_view_permission": model_admin.has_view_permission(request),
        "publisher_note": _publisher_note(request.user),
    }
    return TemplateResponse(request, "admin/notifications/notification/publish.html", context)


def _publish(cleaned: dict, *, published_by_id: int) -> services.PublishResult:
    return services.notification_publish_requested(
        published_by_id=published_by_id,
        event=cleaned["event"],
        title=cleaned["title"],
        body=cleaned["body"],
        users=[user.pk for user in cleaned["users"]],
        departments=[department.pk for department in cleaned["departments"]],
        document_id=cleaned["document"].pk if cleaned["document"] else None,
        priority=cleaned["priority"],
        expires_at=cleaned["expires_at"],
    )


def _publisher_note(user: Any) -> str:
    if user.is_superuser:
        return "You publish as yourself, a superuser: to anyone, with any event name the system does not reserve."
    return "You publish as yourself, within your publisher scope (the same rules as the API)."
