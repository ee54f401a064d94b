"""Signing in and out with Django's session, and the socket's short-lived access token for the signed-in page."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.sign_in import refuse_if_locked_out
from web.forms import SignInForm
from web.tokens import web_access_token_for


def home(request: HttpRequest) -> HttpResponse:
    """`/`: the inbox when signed in, else the sign-in page that leads there."""
    inbox = reverse("web:inbox")
    if request.user.is_authenticated:
        return HttpResponseRedirect(inbox)
    return HttpResponseRedirect(f"{reverse('web:sign-in')}?{urlencode({'next': inbox})}")


class SignInView(LoginView):
    """Django's sign-in under the lockout the admin's sign-in has (shared counts): 429 with Retry-After when
    refused for it."""

    template_name = "web/sign_in.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        return refuse_if_locked_out(response) if isinstance(response, TemplateResponse) else response


class SignOutView(LogoutView):
    """POST only (Django's own rule): signs out and says so on the sign-in page."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have signed out.")
        return response


class WebTokenView(APIView):
    """POST /web/token/: an access token for the hub, for the session's user. The session's cookie alone is not
    enough: SessionAuthentication asks for the CSRF token too (header X-CSRFToken), so another site cannot get
    one. Refused with the API's JSON 403, never a redirect to the sign-in page; never cached."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    schema = None  # not part of the API's schema: the pages' own endpoint

    def post(self, request: Request) -> Response:
        token = web_access_token_for(request.user)  # type: ignore[arg-type]  # IsAuthenticated: a User
        return Response({"access": token.access, "expires_at": token.expires_at.isoformat()})

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response
