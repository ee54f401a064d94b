"""The settings page: how the user wants to be notified (the same settings as /api/me/preferences/).

One form, no JavaScript needed; the preferences service decides what is allowed and its refusals are shown
beside the field they name.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from notifications.errors import NotificationError
from notifications.preferences import preferences_of
from notifications.services.preferences import preferences_update
from web.forms import PreferencesForm, add_preferences_error
from web.views import SignedInRequest


@login_required
def settings_page(request: SignedInRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, preferences=preferences_of(request.user.pk))
    if request.method == "POST" and form.is_valid():
        try:
            # The page shows every choice: what it does not send (a mandatory event type's) goes back to the default.
            preferences_update(
                user_id=request.user.pk, changes=form.changes(), events=form.event_changes(), replace=True
            )
        except NotificationError as error:
            add_preferences_error(form, error)
        else:
            messages.success(request, "Settings saved.")
            return HttpResponseRedirect(reverse("web:settings"))
    return render(request, "web/settings.html", {"nav": "settings", "form": form}, status=400 if form.errors else 200)
