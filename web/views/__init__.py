"""The pages' views, one module per part: the account (sign-in, the socket's token), the inbox, the workflow."""

from django.contrib.auth.models import User
from django.http import HttpRequest


class SignedInRequest(HttpRequest):
    """The request of a view behind `login_required`: its user is a signed-in, active user."""

    user: User
