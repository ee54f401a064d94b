"""What the pages' header shows on every page: the unread count, read only if a template asks for it."""

from functools import cache
from typing import Any

from django.http import HttpRequest

from notifications.selectors import unread_count


def header(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    @cache
    def header_unread_count() -> int:  # the template calls it; the admin's pages never do
        return unread_count(user.pk)

    return {"header_unread_count": header_unread_count}
