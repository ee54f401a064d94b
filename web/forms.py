"""The pages' forms: they parse and check input; the workflow services decide what is allowed."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from core.sign_in import LockoutAuthenticationFormMixin
from notifications.errors import NotificationError
from notifications.preferences import EventChoice, Preferences
from notifications.services.preferences import GENERAL_FIELDS, EventChange
from web.templatetags.web_time import event_label
from workflow import selectors
from workflow.api.serializers import MAX_APPROVERS, MAX_COMMENT_LENGTH, MAX_DESCRIPTION_LENGTH
from workflow.errors import WorkflowError
from workflow.models import Department, Document

APPROVER_SEPARATORS = re.compile(r"[\s,]+")


class SignInForm(LockoutAuthenticationFormMixin):
    """Username and password, under the sign-in pages' shared lockout. Inactive users cannot sign in."""


class InboxFilterForm(forms.Form):
    """The inbox's query string. A value that does not parse is dropped, never an error page."""

    event = forms.ChoiceField(label="Event", required=False)
    unread = forms.BooleanField(label="Unread only", required=False)
    cursor = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, event_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        event_field = self.fields["event"]
        assert isinstance(event_field, forms.ChoiceField)
        event_field.choices = [("", "All events"), *((name, event_label(name)) for name in event_names)]

    def filters(self) -> dict[str, Any]:
        """The fields that parsed, the others at their empty value."""
        self.is_valid()
        return {name: self.cleaned_data.get(name) or field.initial for name, field in self.fields.items()}


class DepartmentField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Department) -> str:
        return obj.name


class DocumentForm(forms.Form):
    title = forms.CharField(label="Title", max_length=Document._meta.get_field("title").max_length)
    description = forms.CharField(
        label="Description", required=False, max_length=MAX_DESCRIPTION_LENGTH, widget=forms.Textarea(attrs={"rows": 4})
    )
    department = DepartmentField(label="Department", queryset=Department.objects.none(), empty_label=None)
    approvers = forms.CharField(
        label="Approvers",
        max_length=2_000,
        help_text="Usernames in the order they decide, separated by commas, e.g. “bob, carol”.",
        widget=forms.TextInput(attrs={"list": "approver-names", "autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, user: AbstractUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        departments = selectors.departments_of(user)
        department_field = self.fields["department"]
        assert isinstance(department_field, DepartmentField)
        department_field.queryset = departments
        if not departments.exists():
            department_field.help_text = "You belong to no department yet: ask an administrator to add you to one."

    def clean_approvers(self) -> list[AbstractUser]:
        """The approvers, in the order written; every name must be a user (the services check the rest)."""
        names = [name for name in APPROVER_SEPARATORS.split(self.cleaned_data["approvers"]) if name]
        if not names:
            raise forms.ValidationError("Name at least one approver.")
        if len(names) > MAX_APPROVERS:
            raise forms.ValidationError(f"At most {MAX_APPROVERS} approvers.")
        users = selectors.users_named(names)
        unknown = [name for name in names if name not in users]
        if unknown:
            raise forms.ValidationError(f"No such user: {', '.join(unknown)}.")
        return [users[name] for name in names]


class DecisionForm(forms.Form):
    """Approve (the comment optional) or reject (the comment required: the requester reads why)."""

    comment = forms.CharField(
        label="Comment", required=False, max_length=MAX_COMMENT_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, comment_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.comment_required = comment_required

    def clean_comment(self) -> str:
        comment = self.cleaned_data["comment"].strip()
        if self.comment_required and not comment:
            raise forms.ValidationError("Say why you reject it: the requester reads this.")
        return comment


LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


class OutOfOfficeForm(forms.Form):
    """A delegate and a period; the delegation services check the rest (overlaps, loops)."""

    delegate = forms.CharField(
        label="Delegate",
        max_length=150,
        help_text="The username of who decides your new tasks while you are away.",
        widget=forms.TextInput(attrs={"list": "delegate-names", "autocomplete": "off", "spellcheck": "false"}),
    )
    starts_at = forms.DateTimeField(
        label="From",
        required=False,
        input_formats=[LOCAL_MINUTE],
        help_text="UTC. Leave it empty to start now.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_MINUTE),
    )
    ends_at = forms.DateTimeField(
        label="Until",
        input_formats=[LOCAL_MINUTE],
        help_text="UTC. Then tasks come to you again.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_MINUTE),
    )

    def clean_delegate(self) -> AbstractUser:
        name = self.cleaned_data["delegate"].strip()
        delegate = selectors.users_named([name]).get(name)
        if delegate is None:
            raise forms.ValidationError(f"No such user: {name}.")
        return delegate

    def clean_starts_at(self) -> datetime:
        return self.cleaned_data["starts_at"] or timezone.now()


def add_workflow_error(form: forms.Form, error: WorkflowError) -> None:
    """Show a refusal of the workflow services beside the field it names, or above the form."""
    by_field = error.fields() or {}
    if not by_field:
        form.add_error(None, error.message)
    for field, messages in by_field.items():
        form.add_error(field if field in form.fields else None, messages)


# A choice per event type: the organisation's default, or the user's own.
PUSH_CHOICES = [("", "Default"), ("on", "Push"), ("off", "No push")]
MUTE_CHOICES = [("", "Default"), ("shown", "Show"), ("muted", "Mute")]
CHOICE_VALUES: dict[str, bool | None] = {"": None, "on": True, "off": False, "shown": False, "muted": True}


def _choice_of(value: bool | None, *, true: str, false: str) -> str:
    return "" if value is None else true if value else false


class PreferencesForm(forms.Form):
    """The settings page: the API's fields, and two choices per event type that is not mandatory.

    Only parses; notifications/services/preferences.py decides what is allowed (`add_preferences_error`)."""

    time_zone = forms.ChoiceField(label="Time zone", help_text="Quiet hours follow this zone's clock.")
    quiet_hours_start = forms.TimeField(
        label="Quiet hours from", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    quiet_hours_end = forms.TimeField(
        label="until", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    urgent_breaks_through = forms.BooleanField(label="Urgent notifications may push during quiet hours", required=False)
    push_enabled = forms.BooleanField(label="Push notifications to my devices when I am offline", required=False)

    def __init__(self, *args: Any, preferences: Preferences, **kwargs: Any) -> None:
        initial = {
            "time_zone": preferences.time_zone,
            "quiet_hours_start": preferences.quiet_hours_start,
            "quiet_hours_end": preferences.quiet_hours_end,
            "urgent_breaks_through": preferences.urgent_breaks_through,
            "push_enabled": preferences.push_enabled,
        }
        self.event_choices = preferences.events
        for choice in preferences.events:
            initial[f"push:{choice.event}"] = _choice_of(choice.push, true="on", false="off")
            initial[f"muted:{choice.event}"] = _choice_of(choice.muted, true="muted", false="shown")
        super().__init__(*args, **{**kwargs, "initial": initial})
        zone_field = self.fields["time_zone"]
        assert isinstance(zone_field, forms.ChoiceField)
        zone_field.choices = [(name, name) for name in sorted(zoneinfo.available_timezones())]
        for choice in preferences.events:
            if choice.mandatory:
                continue
            label = event_label(choice.event)
            self.fields[f"push:{choice.event}"] = forms.ChoiceField(
                label=f"Push for {label}", choices=PUSH_CHOICES, required=False
            )
            self.fields[f"muted:{choice.event}"] = forms.ChoiceField(
                label=f"Show or mute {label}", choices=MUTE_CHOICES, required=False
            )

    def event_rows(self) -> list[tuple[EventChoice, forms.BoundField | None, forms.BoundField | None]]:
        """Each event type with its two fields (None for a mandatory one): the table's rows."""
        return [
            (
                choice,
                None if choice.mandatory else self[f"push:{choice.event}"],
                None if choice.mandatory else self[f"muted:{choice.event}"],
            )
            for choice in self.event_choices
        ]

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in GENERAL_FIELDS}

    def event_changes(self) -> list[EventChange]:
        return [
            EventChange(
                event=choice.event,
                push=CHOICE_VALUES[self.cleaned_data[f"push:{choice.event}"]],
                muted=CHOICE_VALUES[self.cleaned_data[f"muted:{choice.event}"]],
            )
            for choice in self.event_choices
            if not choice.mandatory
        ]


def add_preferences_error(form: PreferencesForm, error: NotificationError) -> None:
    """Show a refusal of the preferences service beside the field it names (`events.<i>.<x>`: that row's)."""
    listed = [choice.event for choice in form.event_choices if not choice.mandatory]
    by_field: dict[str | None, list[str]] = dict((error.fields() or {}).items())
    if not by_field:
        by_field[None] = [error.message]
    for path, messages in by_field.items():
        field = path
        if path and path.startswith("events."):
            _, index, name = path.split(".")
            field = f"{'muted' if name == 'muted' else 'push'}:{listed[int(index)]}"
        form.add_error(field if field in form.fields else None, messages)
