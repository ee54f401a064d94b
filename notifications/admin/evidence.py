"""Notifications, deliveries, attempts and devices: the record of what happened, read-only for everyone.

Nobody adds, changes or deletes them here (a superuser neither): an edited delivery would no longer say what
happened. The one write is "retry now" (`deliveries_retry_now`), which hands open deliveries to the next retry
sweep. The notification list's "Add" is the publish form (admin/publish.py). Devices stay view-only: there is no
service to deactivate one (notifications/services/devices.py registers and deletes on the user's behalf).
"""

import uuid
from collections.abc import Collection
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from core.read_only_admin import ReadOnlyAdminMixin, ReadOnlyTabularInline
from notifications import report
from notifications.admin.publish import may_publish, publish_view
from notifications.console.times import at_second
from notifications.models import (
    STATUS_LABELS,
    Delivery,
    DeliveryAttempt,
    Device,
    Notification,
    person_name,
)
from notifications.services import deliveries_retry_now
from notifications.timeline import delivery_timeline

RECIPIENTS_PER_PAGE = 50

DELIVERY_FIELDS = (
    "notification",
    "recipient",
    "status_code",
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
    "resolved_at",
    "push_claimed_by",
    "push_claimed_until",
    "updated_at",
)


class EvidenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """View only, for everyone: no add, change or delete (the delete action goes with the permission)."""


def status_badge(delivery: Delivery) -> str:
    """The status label with a mark of its kind: a simulated push looks nothing like a real one."""
    kind = "failed" if delivery.status == Delivery.Status.FAILED else delivery.status_kind
    return format_html('<span class="nh-status nh-status--{}">{}</span>', kind, delivery.status_label)


# --- Notifications -------------------------------------------------------------------------------------------


@admin.register(Notification)
class NotificationAdmin(EvidenceAdmin):
    list_display = ["what", "priority", "publisher", "document", "created", "expires"]
    list_filter = ["event", "priority"]
    search_fields = ["id", "title", "body", "event"]
    date_hierarchy = "created_at"
    list_select_related = ["published_by", "document"]
    fields = ["id"]  # the page is the custom template; the stock form is not shown
    change_form_template = "admin/notifications/notification/change_form.html"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The publish form's permission: the API's (notifications/admin/publish.py)."""
        return may_publish(request.user)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        return publish_view(self, request)

    @admin.display(description="notification", ordering="title")
    def what(self, notification: Notification) -> str:
        return f"{notification.title} ({notification.event})"

    @admin.display(description="published by", ordering="published_by__username")
    def publisher(self, notification: Notification) -> str:
        return person_name(notification.published_by) if notification.published_by else "the workflow"

    @admin.display(description="published at", ordering="created_at")
    def created(self, notification: Notification) -> str:
        return at_second(notification.created_at)

    @admin.display(description="expires at", ordering="expires_at")
    def expires(self, notification: Notification) -> str:
        return at_second(notification.expires_at) if notification.expires_at else "never"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """What was published, a count per status, and the recipients (searchable, 50 a page); the query count
        does not grow with the recipients."""
        notification = get_object_or_404(
            Notification.objects.select_related("published_by", "document"), pk=_uuid_or_404(object_id)
        )
        query = request.GET.get("q", "").strip()
        page = Paginator(report.notification_recipients(notification.pk, search=query), RECIPIENTS_PER_PAGE)
        recipients = page.get_page(request.GET.get("page"))
        changelist = reverse("admin:notifications_delivery_changelist")
        context = {
            "notification": notification,
            "summary": [
                {**row, "url": f"{changelist}?{_delivery_filter_query(notification, row)}"}
                for row in report.notification_status_summary(notification.pk)
            ],
            "recipients": recipients,
            "recipient_rows": [_recipient_row(delivery, notification) for delivery in recipients],
            "query": query,
            "all_deliveries_url": f"{changelist}?notification={notification.pk}",
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **context})


def _delivery_filter_query(notification: Notification, row: dict) -> str:
    params = {"notification": str(notification.pk), "status": row["filter"]}
    if row["failure_reason"]:
        params["failure_reason__exact"] = row["failure_reason"]
    return urlencode(params)


def _uuid_or_404(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None  # matches no row: get_object_or_404 answers 404


def _recipient_row(delivery: Delivery, notification: Notification) -> dict:
    username = delivery.recipient.get_username()
    return {
        "delivery": delivery,
        "name": person_name(delivery.recipient),
        "status": status_badge(delivery),
        # Only the moments that happened, in one column: five mostly empty columns do not fit beside the menu.
        "times": [
            (label, at_second(moment))
            for label, moment in (
                ("Sent", delivery.sent_at),
                ("Acknowledged", delivery.acknowledged_at),
                ("Read", delivery.read_at),
                ("Pushed", delivery.pushed_at),
                ("Failed", delivery.failed_at),
                ("Resolved", delivery.resolved_at),
            )
            if moment is not None
        ],
        "timeline_url": reverse("admin:notifications_delivery_change", args=[delivery.pk]),
        "why_url": report.why_url(username=username, notification_id=notification.pk),
    }


# --- Deliveries ----------------------------------------------------------------------------------------------


class DeliveryStatusFilter(admin.SimpleListFilter):
    """The status as the labels say it: a real and a simulated push apart, an ack or read after a push apart."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return list(STATUS_LABELS.items())

    def queryset(self, request, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        kind = self.value()
        if kind is None:
            return queryset
        if kind not in STATUS_LABELS:
            raise IncorrectLookupParameters(f"Unknown status {kind!r}.")
        return queryset.filter(report.status_kind_filter(kind))


class PushFilter(admin.SimpleListFilter):
    """Pushed at some point, whatever the status now: a delivery acknowledged after its push was pushed all the
    same."""

    title = "push"
    parameter_name = "push"

    def lookups(self, request, model_admin):
        return [("real", "Pushed through FCM (accepted by FCM)"), ("simulated", STATUS_LABELS["pushed_simulated"])]

    def queryset(self, request, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        if self.value() == "real":
            return queryset.filter(pushed_at__isnull=False, push_simulated=False)
        if self.value() == "simulated":
            return queryset.filter(pushed_at__isnull=False, push_simulated=True)
        return queryset


class NotificationFilter(admin.SimpleListFilter):
    """The deliveries of one notification (the notification page links here); offered only once chosen."""

    title = "notification"
    parameter_name = "notification"

    def lookups(self, request, model_admin):
        chosen = _uuid_or_404(self.value() or "")
        notification = Notification.objects.filter(pk=chosen).first() if chosen else None
        return [(str(notification.pk), str(notification))] if notification else []

    def queryset(self, request, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        value = self.value()
        if value is None:
            return queryset
        chosen = _uuid_or_404(value)
        if chosen is None:
            raise IncorrectLookupParameters(f"Not a notification id: {value!r}.")
        return queryset.filter(notification_id=chosen)


class DeliveryAttemptInline(ReadOnlyTabularInline):
    model = DeliveryAttempt
    fields = ("created_at", "channel", "outcome", "device", "error")
    readonly_fields = fields
    verbose_name_plural = "attempt log (raw)"

    def get_queryset(self, request) -> QuerySet[DeliveryAttempt]:
        return super().get_queryset(request).select_related("device__user")


def retry_message(*, selected: int, retried: int) -> str:
    """What "retry now" did: how many were open (handed to the sweep) and how many were closed (left alone)."""
    closed = selected - retried
    parts = [f"{retried} open {'delivery' if retried == 1 else 'deliveries'} will be retried at the next sweep."]
    if closed:
        parts.append(
            f"{closed} closed ({'it is' if closed == 1 else 'they are'} acknowledged, read, pushed or failed) "
            "left alone: nothing is sent again once a delivery is closed."
        )
    return " ".join(parts)


@admin.register(Delivery)
class DeliveryAdmin(EvidenceAdmin):
    list_display = [
        "notification_column",
        "recipient_column",
        "outcome",
        "attempts",
        "push_attempts",
        "next_attempt",
        "last_error_summary",
        "created",
    ]
    list_filter = [NotificationFilter, DeliveryStatusFilter, "failure_reason", PushFilter, "notification__event"]
    search_fields = [
        "recipient__username",
        "recipient__first_name",
        "recipient__last_name",
        "=notification__id",
        "notification__title",
    ]
    date_hierarchy = "created_at"
    list_select_related = ["notification", "recipient"]
    fields = DELIVERY_FIELDS
    readonly_fields = DELIVERY_FIELDS
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]
    change_form_template = "admin/notifications/delivery/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        retry = path(
            "<int:delivery_id>/retry-now/",
            self.admin_site.admin_view(self.retry_now_view),
            name="notifications_delivery_retry_now",
        )
        return [retry, *super().get_urls()]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        # The change page's title is str(delivery): the notification and recipient in the same query.
        return super().get_queryset(request).select_related("notification", "recipient")

    @admin.display(description="notification", ordering="notification__created_at")
    def notification_column(self, delivery: Delivery) -> str:
        return f"{delivery.notification.title} ({delivery.notification.event})"

    @admin.display(description="recipient", ordering="recipient__username")
    def recipient_column(self, delivery: Delivery) -> str:
        return person_name(delivery.recipient)

    @admin.display(description="status", ordering="status")
    def outcome(self, delivery: Delivery) -> str:
        return status_badge(delivery)

    @admin.display(description="status label")
    def status_label(self, delivery: Delivery) -> str:
        return delivery.status_label

    @admin.display(description="status (column value)")
    def status_code(self, delivery: Delivery) -> str:
        """The raw value, not its choice label: "Pushed through FCM" would be untrue of a simulated push."""
        return delivery.status

    @admin.display(description="next look by the sweep", ordering="next_attempt_at")
    def next_attempt(self, delivery: Delivery) -> str:
        return at_second(delivery.next_attempt_at) if delivery.next_attempt_at else ""

    @admin.display(description="created", ordering="created_at")
    def created(self, delivery: Delivery) -> str:
        return at_second(delivery.created_at)

    @admin.display(description="last error")
    def last_error_summary(self, delivery: Delivery) -> str:
        return delivery.last_error[:80]

    @admin.action(description="Retry selected open deliveries at the next sweep")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        self._retry(request, list(queryset.values_list("id", flat=True)))

    @staticmethod
    def _retry(request: HttpRequest, delivery_ids: Collection[int]) -> None:
        retried = deliveries_retry_now(delivery_ids=delivery_ids)
        level = messages.SUCCESS if retried else messages.WARNING
        messages.add_message(request, level, retry_message(selected=len(delivery_ids), retried=retried))

    def retry_now_view(self, request: HttpRequest, delivery_id: int) -> HttpResponse:
        """The "Retry now" button of an open delivery's page: the same service as the list's action."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        delivery = get_object_or_404(Delivery, pk=delivery_id)
        if not self.has_view_permission(request, delivery):
            return HttpResponse("You may not see this delivery.", status=403)
        self._retry(request, [delivery.pk])
        return HttpResponseRedirect(reverse("admin:notifications_delivery_change", args=[delivery.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The delivery's timeline on top, the raw fields and attempt log below."""
        delivery = self.get_object(request, object_id)
        context = {}
        if delivery is not None:
            context = {
                "timeline": delivery_timeline(delivery),
                "status": status_badge(delivery),
                "is_open": delivery.status in Delivery.OPEN_STATUSES,
                "why_url": report.why_url(
                    username=delivery.recipient.get_username(), notification_id=delivery.notification_id
                ),
                "notification_url": reverse("admin:notifications_notification_change", args=[delivery.notification_id]),
            }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **context})


# --- Attempts and devices ------------------------------------------------------------------------------------


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(EvidenceAdmin):
    list_display = ["created", "delivery", "channel", "outcome", "device", "error"]
    list_filter = ["channel", "outcome"]
    search_fields = ["delivery__recipient__username", "=delivery__notification__id", "error"]
    list_select_related = ["delivery__notification", "delivery__recipient", "device__user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeliveryAttempt]:
        return super().get_queryset(request).select_related("delivery__notification", "delivery__recipient")

    @admin.display(description="at", ordering="created_at")
    def created(self, attempt: DeliveryAttempt) -> str:
        return at_second(attempt.created_at)


@admin.register(Device)
class DeviceAdmin(EvidenceAdmin):
    list_display = ["owner", "platform", "app_install_id", "active", "deactivated_reason", "last_seen"]
    list_filter = ["platform", "active", "deactivated_reason"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "app_install_id"]
    list_select_related = ["user"]
    exclude = ["token"]  # a credential for pushing to the phone: not for display

    @admin.display(description="user", ordering="user__username")
    def owner(self, device: Device) -> str:
        return person_name(device.user)

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen(self, device: Device) -> str:
        return at_second(device.last_seen_at)
