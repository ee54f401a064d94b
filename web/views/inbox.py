"""The inbox: the user's notifications in reading order, filtered and paged; marking them read.

Marking read goes through `notifications.services` with no origin, so every socket of the user (this browser's
other tabs, their phone) hears of it, as it does when the page's script reads through the hub.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.errors import DomainError
from notifications import selectors, services
from notifications.errors import NotificationError
from notifications.models import ActionPerformance
from web.cursors import NEWER, OLDER, decode_cursor, encode_cursor
from web.forms import InboxFilterForm
from web.views import SignedInRequest

PAGE_SIZE = 20


@login_required
def inbox(request: SignedInRequest) -> HttpResponse:
    user_id = request.user.pk
    form = InboxFilterForm(request.GET, event_names=selectors.inbox_event_names(user_id))
    filters = form.filters()
    decoded = decode_cursor(filters["cursor"] or "")
    direction, position = decoded if decoded else (None, None)
    page = selectors.inbox_page(
        user_id,
        event=filters["event"],
        unread_only=bool(filters["unread"]),
        after=position if direction == OLDER else None,
        before=position if direction == NEWER else None,
        size=PAGE_SIZE,
    )
    return render(
        request,
        "web/inbox.html",
        {
            "nav": "inbox",
            "form": form,
            "page": page,
            "filtered": bool(filters["event"] or filters["unread"]),
            "first_page": page.newer is None,
            "older_url": _page_url(request.GET, OLDER, page.older),
            "newer_url": _page_url(request.GET, NEWER, page.newer),
            "unread_total": selectors.unread_count(user_id),
        },
    )


def _page_url(query: QueryDict, direction: str, position: selectors.InboxPosition | None) -> str | None:
    """This page's URL with its filters, at the page before or after `position`."""
    if position is None:
        return None
    params = query.copy()
    params["cursor"] = encode_cursor(direction, position)
    return f"{reverse('web:inbox')}?{params.urlencode()}"


@require_POST
@login_required
def mark_read(request: SignedInRequest, notification_id: str) -> HttpResponse:
    try:
        changed = services.delivery_mark_read(user_id=request.user.pk, notification_id=notification_id, origin=None)
    except NotificationError:
        messages.error(request, "That notification is not in your inbox.")
    else:
        messages.success(request, "Marked as read." if changed else "It was read already.")
    return _back(request)


# What the page says once an action is done.
ACTION_DONE: dict[str, str] = {
    ActionPerformance.Outcome.APPROVED: "Approved.",
    ActionPerformance.Outcome.REJECTED: "Rejected: the requester has been told why.",
    ActionPerformance.Outcome.RECORDED: "Done: its sender has been told.",
}


@require_POST
@login_required
def perform_action(request: SignedInRequest, notification_id: str, action: str) -> HttpResponse:
    """An inbox item's action button (Approve, Reject with its comment, a publisher's own), as the API does it."""
    try:
        result = services.notification_action_perform(
            notification_id=notification_id, user=request.user, action=action, comment=request.POST.get("comment", "")
        )
    except DomainError as error:  # the notifications' refusal, or the workflow's (not your step, decided already)
        messages.error(request, error.message)
    else:
        done = ACTION_DONE.get(result.outcome, "Done.")
        messages.success(request, f"{done} (You had done it already.)" if result.already_performed else done)
    return _back(request)


@require_POST
@login_required
def mark_all_read(request: SignedInRequest) -> HttpResponse:
    changed = services.deliveries_mark_all_read(user_id=request.user.pk, origin=None)
    if changed:
        messages.success(request, f"Marked {changed} notification{'s' if changed != 1 else ''} as read.")
    else:
        messages.info(request, "Nothing was unread.")
    return _back(request)


def _back(request: SignedInRequest) -> HttpResponse:
    """Back to the page the form was on (its filters and cursor), if that is one of ours; else the inbox."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("web:inbox")
    return HttpResponseRedirect(target)
