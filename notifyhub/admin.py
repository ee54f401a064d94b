"""Django's admin, whose sign-in page refuses a username from an address after repeated failed sign-ins.

`notifyhub.apps.NotifyHubAdminConfig` installs it in place of `django.contrib.admin`'s default site (the way
Django's docs override it): every `admin.site.register` still lands here. The lockout is
`core.sign_in.password_sign_in_lockout()`, shared with the web pages' `/sign-in/` and counted in Redis with the
rest of the rate limits, per username and client address (`REMOTE_ADDR`, resolved behind trusted proxies by
`notifyhub/proxies.py`). The refusal is the admin's own sign-in page with the reason and when to come back,
answered 429 with `Retry-After`. Only the sign-in pages count: the API's token endpoint has its own limits
(`core/api/throttling.py`), so a password guessed there is not counted twice.
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from core.sign_in import LockoutAuthenticationFormMixin, refuse_if_locked_out


class LockoutAdminAuthenticationForm(LockoutAuthenticationFormMixin, AdminAuthenticationForm):
    """The admin's sign-in form, refused while its username and address are locked out; failures are counted."""


class NotifyHubAdminSite(admin.AdminSite):
    login_form = LockoutAdminAuthenticationForm
    site_header = "NotifyHub operations"
    site_title = "NotifyHub"
    index_title = "Operations"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        """The admin's own URLs, and the operations console's pages under console/ (staff only)."""
        from notifications.console.urls import urlpatterns as console_urls

        console = [
            path(f"console/{pattern.pattern}", self.admin_view(pattern.callback), name=pattern.name)
            for pattern in console_urls
        ]
        return console + super().get_urls()

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:  # type: ignore[override]  # 400 for a bad ?period=
        """The operations dashboard, with the app list below it (notifications/console/dashboard.py)."""
        from notifications.console.dashboard import dashboard

        return dashboard(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().login(request, extra_context)
        return refuse_if_locked_out(response) if isinstance(response, TemplateResponse) else response
