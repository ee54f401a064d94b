"""The dashboard: delivery health for the last hour, day or week, and who is connected now. The admin's index.

`dashboard` renders every number server-side (the page is complete without JavaScript); `dashboard_data` answers
the same numbers as JSON, which `notifications/console/dashboard.js` polls every 10 seconds to update the numbers,
the charts and the recent failures in place. Both come from `dashboard_numbers`: one shape, two renderings.
"""

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from notifications import presence
from notifications.console import stats
from notifications.console.stats import DEFAULT_PERIOD, Percentiles, Period
from notifications.console.times import at_second
from notifications.models import Delivery, DeliveryAttempt

# How often the page asks for fresh numbers (dashboard.js reads it from the page).
REFRESH_SECONDS = 10


def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard page (also the admin's index, with the app list below it)."""
    period = _period_of(request)
    if period is None:
        return _unknown_period(request)
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "numbers": dashboard_numbers(period),
        "periods": list(Period),
        "period": period,
        "refresh_seconds": REFRESH_SECONDS,
        "app_list": admin.site.get_app_list(request),
        "is_nav_sidebar_enabled": False,  # the app list is on the page, below the numbers
    }
    return TemplateResponse(request, "admin/console/dashboard.html", context)


def dashboard_data(request: HttpRequest) -> HttpResponse:
    """The dashboard's numbers as JSON, for the page's refresh every 10 seconds."""
    period = _period_of(request)
    if period is None:
        return _unknown_period(request)
    return JsonResponse(dashboard_numbers(period))


def _period_of(request: HttpRequest) -> Period | None:
    key = request.GET.get("period")
    return DEFAULT_PERIOD if key is None else Period.from_key(key)


def _unknown_period(request: HttpRequest) -> HttpResponse:
    choices = ", ".join(period.key for period in Period)
    return HttpResponseBadRequest(
        f"Unknown period {request.GET.get('period')!r}: choose one of {choices}.", content_type="text/plain"
    )


def dashboard_numbers(period: Period) -> dict[str, Any]:
    """Everything the dashboard shows for `period`, ready for the template and for JSON."""
    found = stats.period_stats(period)
    deliveries, backlog = found.deliveries, found.backlog
    processes = presence.web_processes()
    by_protocol: dict[str, int] = {}
    for process in processes:
        for protocol, count in process.connections.items():
            by_protocol[protocol] = by_protocol.get(protocol, 0) + count
    delivered = deliveries.acknowledged + deliveries.read + deliveries.pushed_real + deliveries.pushed_simulated
    since = at_second(found.since)
    return {
        "period": period.key,
        "period_label": period.label,
        "since": since,
        "as_of": at_second(found.now),
        "published": found.published,
        "deliveries": {
            "total": deliveries.total,
            "delivered": delivered,
            "acknowledged": deliveries.acknowledged,
            "read": deliveries.read,
            "pushed_real": deliveries.pushed_real,
            "pushed_simulated": deliveries.pushed_simulated,
            "failed": deliveries.failed,
            "open": deliveries.pending + deliveries.sent,
        },
        "failed_by_reason": [
            {"reason": reason, "label": Delivery.FailureReason(reason).label, "count": count}
            for reason, count in sorted(deliveries.failed_by_reason.items(), key=lambda item: -item[1])
        ],
        "to_ack": _seconds_text(found.to_ack),
        "to_push": _seconds_text(found.to_push),
        "push_outcomes": [
            {"outcome": outcome, "label": DeliveryAttempt.Outcome(outcome).label, "count": count}
            for outcome, count in found.push_outcomes.items()
        ],
        "backlog": {
            "open": backlog.pending + backlog.sent,
            "pending": backlog.pending,
            "sent": backlog.sent,
            "overdue": backlog.overdue,
            "sweep_lag": duration_text(backlog.sweep_lag_seconds(found.now)) if backlog.oldest_overdue_at else "none",
        },
        "presence": {
            "connections": sum(by_protocol.values()),
            # Summed per process: a user connected to two processes counts on each (see presence.web_processes).
            "users": sum(process.users for process in processes),
            "native": by_protocol.get("native", 0),
            "signalr": by_protocol.get("signalr", 0),
            "processes": [
                {
                    "process": process.process_id,
                    "connections": process.connection_count,
                    "native": process.connections.get("native", 0),
                    "signalr": process.connections.get("signalr", 0),
                    "users": process.users,
                    "behind": duration_text(process.behind_seconds),
                }
                for process in processes
            ],
        },
        "series": {
            "labels": [
                point.start.strftime("%d %b %H:%M" if period is Period.WEEK else "%H:%M") for point in found.series
            ],
            "published": [point.published for point in found.series],
            "delivered": [point.delivered for point in found.series],
            "failed": [point.failed for point in found.series],
        },
        "recent_failures": [_failure_row(delivery) for delivery in stats.recent_failures(found.since)],
        "links": _changelist_links(found.since),
    }


def _failure_row(delivery: Delivery) -> dict[str, str]:
    recipient = delivery.recipient
    return {
        "at": at_second(delivery.failed_at),
        "recipient": recipient.get_full_name() or recipient.get_username(),
        "username": recipient.get_username(),
        "title": delivery.notification.title,
        "reason": Delivery.FailureReason(delivery.failure_reason).label if delivery.failure_reason else "failed",
        "why_url": reverse("admin:console-why")
        + "?"
        + urlencode({"user": recipient.get_username(), "notification": str(delivery.notification_id)}),
    }


def _changelist_links(since) -> dict[str, str]:
    """The delivery list filtered to what a number counts (deliveries created in the period, or open now)."""
    deliveries = reverse("admin:notifications_delivery_changelist")
    attempts = reverse("admin:notifications_deliveryattempt_changelist")
    in_period = {"created_at__gte": since.strftime("%Y-%m-%d %H:%M:%S")}

    def filtered(base: str, **lookups: str) -> str:
        return f"{base}?{urlencode(lookups)}"

    return {
        "deliveries": filtered(deliveries, **in_period),
        "failed": filtered(deliveries, status__exact="failed", **in_period),
        "acknowledged": filtered(deliveries, status__exact="acknowledged", **in_period),
        "read": filtered(deliveries, status__exact="read", **in_period),
        "pushed_real": filtered(deliveries, status__exact="pushed", push="real", **in_period),
        "pushed_simulated": filtered(deliveries, status__exact="pushed", push="simulated", **in_period),
        "pending": filtered(deliveries, status__exact="pending"),
        "sent": filtered(deliveries, status__exact="sent"),
        "notifications": filtered(reverse("admin:notifications_notification_changelist"), **in_period),
        "push_attempts": filtered(attempts, channel__exact="fcm", **in_period),
        "presence": reverse("admin:console-presence"),
    }


def _seconds_text(percentiles: Percentiles) -> dict[str, str]:
    return {name: duration_text(getattr(percentiles, name)) for name in ("p50", "p95", "p99")}


def duration_text(seconds: float | None) -> str:
    """'40 ms', '2.4 s', '12 s', '3 min 20 s', '2 h 5 min'; a dash when there is nothing to measure."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
