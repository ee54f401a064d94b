"""Admin classes for records nobody edits by hand: view only, for everyone (a superuser too).

Used for evidence (notifications, deliveries, attempts, devices) and for workflow state (documents, steps,
tasks), which change only through their services. Without the delete permission the admin drops the "delete
selected" action as well; a POST to a change page is answered 403.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

# Status badges and vertical timelines: the delivery and document pages, the delivery list.
TIMELINE_CSS = "workflow/admin-timeline.css"


class ReadOnlyAdminMixin:
    """No add, change or delete permission: the admin shows the record and offers no Save or Delete."""

    class Media:
        css = {"all": [TIMELINE_CSS]}

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):  # type: ignore[type-arg]  # any model
    extra = 0
    can_delete = False
