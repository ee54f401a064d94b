"""“Why wasn't U notified?”: one user's presence, devices and deliveries, each explained in words.

`GET /admin/console/why/?user=<username>&notification=<uuid or event name>&since=…&until=…`. The dashboard and
the notification admin link here with `user` and `notification`; the sentences come from `notifications.explain`.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from notifications import explain
from notifications.models import EVENT_NAME_VALIDATOR, Delivery, Device, Notification

User = get_user_model()

DEFAULT_RANGE = timedelta(days=7)
MAX_DELIVERIES = 50
# Usernames the form suggests (a datalist): the most recently signed-in accounts.
SUGGESTED_USERNAMES = 200
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S")


class WhyForm(forms.Form):
    user = forms.CharField(label="User", max_length=150, help_text="Username.")
    notification = forms.CharField(
        label="Notification", required=False, max_length=64, help_text="Its id, or an event name (optional)."
    )
    since = forms.DateTimeField(label="From", required=False, widget=DATETIME_INPUT, help_text="UTC.")
    until = forms.DateTimeField(label="To", required=False, widget=DATETIME_INPUT, help_text="UTC.")

    def clean_user(self) -> AbstractBaseUser:
        username = self.cleaned_data["user"].strip()
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise ValidationError(f"No user named “{username}”.") from None

    def clean_notification(self) -> Notification | str | None:
        value = self.cleaned_data["notification"].strip()
        if not value:
            return None
        try:
            notification_id = uuid.UUID(value)
        except ValueError:
            try:
                EVENT_NAME_VALIDATOR(value)
            except ValidationError:
                raise ValidationError("Give a notification id (a UUID) or an event name.") from None
            return value  # an event name
        notification = Notification.objects.filter(pk=notification_id).first()
        if notification is None:
            raise ValidationError(f"No notification {notification_id}.")
        return notification

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise ValidationError("“From” must come before “To”.")
        return cleaned


@dataclass(frozen=True)
class ExplainedDelivery:
    delivery: Delivery
    explanation: explain.Explanation
    notification_url: str
    delivery_url: str


def why_not_notified(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    context: dict = {
        **admin.site.each_context(request),
        "title": "Why wasn't this user notified?",
        "suggested_usernames": _suggested_usernames(),
    }
    if "user" not in request.GET:
        initial = {"since": (now - DEFAULT_RANGE).replace(microsecond=0), "until": now.replace(microsecond=0)}
        context["form"] = WhyForm(initial=initial)
        return TemplateResponse(request, "admin/console/why.html", context)
    form = WhyForm(request.GET)
    context["form"] = form
    if not form.is_valid():
        return TemplateResponse(request, "admin/console/why.html", context, status=400)
    context.update(_answer(form.cleaned_data, now=now))
    return TemplateResponse(request, "admin/console/why.html", context)


def _answer(query: dict, *, now: datetime) -> dict:
    user = query["user"]
    chosen = query["notification"]
    deliveries = Delivery.objects.filter(recipient=user).select_related("notification", "recipient")
    if isinstance(chosen, Notification):
        # One notification: whenever it was published, the range does not apply.
        deliveries = deliveries.filter(notification=chosen)
        since = until = None
    else:
        since = query["since"] or now - DEFAULT_RANGE
        until = query["until"] or now
        deliveries = deliveries.filter(created_at__gte=since, created_at__lte=until)
        if chosen:
            deliveries = deliveries.filter(notification__event=chosen)
    found = list(deliveries.order_by("-created_at", "-id")[: MAX_DELIVERIES + 1])
    shown = found[:MAX_DELIVERIES]
    explanations = explain.explain_deliveries(shown, now=now)
    missing = None
    if isinstance(chosen, Notification) and not found:
        missing = explain.explain_no_delivery(user=user, notification=chosen, now=now)
    return {
        "subject": user,
        "subject_name": explain.person(user),
        "presence_now": explain.presence_of([user.pk])[user.pk].phrase(now),
        "devices": _devices_of(user, now=now),
        "chosen_notification": chosen if isinstance(chosen, Notification) else None,
        "event": chosen if isinstance(chosen, str) else "",
        "since": since,
        "until": until,
        "explained": [
            ExplainedDelivery(
                delivery=delivery,
                explanation=explanation,
                notification_url=reverse("admin:notifications_notification_change", args=[delivery.notification_id]),
                delivery_url=reverse("admin:notifications_delivery_change", args=[delivery.pk]),
            )
            for delivery, explanation in zip(shown, explanations, strict=True)
        ],
        "more": len(found) > MAX_DELIVERIES,
        "max_deliveries": MAX_DELIVERIES,
        "missing": missing,
        "missing_notification_url": (
            reverse("admin:notifications_notification_change", args=[chosen.pk]) if missing else ""
        ),
    }


def _devices_of(user: AbstractBaseUser, *, now: datetime) -> list[dict]:
    return [
        {
            "name": explain.device_name(device),
            "state": "active" if device.active else f"deactivated ({device.deactivated_reason or 'no reason given'})",
            "active": device.active,
            "registered": device.created_at,
            "last_seen": device.last_seen_at,
        }
        for device in Device.objects.filter(user_id=user.pk).order_by("-active", "-last_seen_at")
    ]


def _suggested_usernames() -> list[str]:
    recent = User.objects.filter(is_active=True).order_by("-last_login", "username")
    return list(recent.values_list("username", flat=True)[:SUGGESTED_USERNAMES])
