"""Django's admin, whose sign-in page refuses a username from an address after repeated failed sign-ins.

`notifyhub.apps.NotifyHubAdminConfig` installs it in place of `django.contrib.admin`'s default site (the way
Django's docs override it): every `admin.site.register` still lands here. The lockout is
`core.sign_in.FailedSignInLockout`, counted in Redis with the rest of the rate limits, per username and client
address (`REMOTE_ADDR`, resolved behind trusted proxies by `notifyhub/proxies.py`). The refusal is the admin's own
sign-in page with the reason and when to come back, answered 429 with `Retry-After`. Only this page counts: the
API's token endpoint has its own limits (`core/api/throttling.py`), so a password guessed there is not counted twice.
"""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from core.sign_in import FailedSignInLockout


def admin_sign_in_lockout() -> FailedSignInLockout:
    """The lockout as the settings say now (ADMIN_LOGIN_MAX_FAILURES, ADMIN_LOGIN_COOLOFF)."""
    return FailedSignInLockout(
        "admin", max_failures=settings.ADMIN_LOGIN_MAX_FAILURES, cooloff=settings.ADMIN_LOGIN_COOLOFF
    )


def wait_in_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in form, refused while its username and address are locked out; failures are counted."""

    locked_out_for = 0  # seconds, when refused for the lockout

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        address = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # nothing was tried: the missing field is the error
        lockout = admin_sign_in_lockout()
        self.locked_out_for = lockout.seconds_left(username, address)
        if self.locked_out_for:
            raise ValidationError(
                "Too many failed sign-ins for this username from your address. "
                f"Try again in {wait_in_words(self.locked_out_for)}.",
                code="locked_out",
            )
        try:
            cleaned = super().clean()
        except ValidationError:  # a wrong password, an inactive or non-staff account
            lockout.record_failure(username, address)
            raise
        lockout.clear(username, address)
        return cleaned


class NotifyHubAdminSite(admin.AdminSite):
    login_form = LockoutAdminAuthenticationForm

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().login(request, extra_context)
        context = response.context_data if isinstance(response, TemplateResponse) else None
        locked_out_for = getattr((context or {}).get("form"), "locked_out_for", 0)
        if locked_out_for:
            response.status_code = 429
            response["Retry-After"] = str(locked_out_for)
        return response
