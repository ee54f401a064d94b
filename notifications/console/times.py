"""Times as the console shows them: to the second, with the time zone, in the site's time zone (TIME_ZONE)."""

from datetime import datetime

from django.utils import timezone

# `at_second` as a Django `date` filter format, for templates: {{ moment|date:"Y-m-d H:i:s T" }}.
AT_SECOND_FORMAT = "Y-m-d H:i:s T"


def at_second(moment: datetime | None) -> str:
    """'2026-12-05 14:05:31 UTC': a full timestamp, to the second, with the zone."""
    if moment is None:
        return "never"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def time_of_day(moment: datetime, *, today: datetime | None = None) -> str:
    """'14:05:31 UTC' when it is today, else '3 Nov 14:05:31 UTC' (or '3 Nov 2025 …' in another year): how a
    sentence says when something happened."""
    local = timezone.localtime(moment)
    now = timezone.localtime(today or timezone.now())
    clock = local.strftime("%H:%M:%S %Z")
    if local.date() == now.date():
        return clock
    day = f"{local.day} {local.strftime('%b')}"
    if local.year != now.year:
        day = f"{day} {local.year}"
    return f"{day} {clock}"
