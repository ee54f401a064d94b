"""Times and event names as the pages show them: relative ("5 minutes ago") beside the exact time, in the words
the page's script keeps up to date (web/static/web/time.js); workflow event names in words."""

import re
from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()

CAMEL_CASE = re.compile(r"(?:[A-Z][a-z]+)+")
CAMEL_WORD = re.compile(r"[A-Z][a-z]+")
UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60))


@register.filter
def ago(moment: datetime | None) -> str:
    """ "just now", "1 minute ago", "3 hours ago", "2 days ago" (the largest whole unit)."""
    if moment is None:
        return ""
    seconds = (timezone.now() - moment).total_seconds()
    if seconds < 45:
        return "just now"
    for unit, length in UNITS:
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "1 minute ago"


@register.filter
def event_label(event: str) -> str:
    """A workflow event's name in words ("NewTask" → "New task"); other names as they are."""
    if not CAMEL_CASE.fullmatch(event or ""):
        return event
    words = CAMEL_WORD.findall(event)
    return " ".join([words[0], *(word.lower() for word in words[1:])])
