"""Fixtures of the web pages' tests: signed-in test clients and a document in review."""

import pytest
from django.core.cache import cache
from django.test import Client

from workflow import services


@pytest.fixture(autouse=True)
def no_sign_in_failures_counted():
    """Every test starts with no failed sign-in counted (the lockout lives in the cache)."""
    cache.clear()


@pytest.fixture
def client_for():
    """client_for(user) -> a test client signed in as `user` (with CSRF checks when asked)."""

    def signed_in(user, *, enforce_csrf_checks: bool = False) -> Client:
        client = Client(enforce_csrf_checks=enforce_csrf_checks)
        client.force_login(user)
        return client

    return signed_in


@pytest.fixture
def in_review(requester, approvers, department):
    """A document of `requester` submitted to `approvers` (the first one decides now)."""
    document = services.document_create(
        requester=requester, department=department, title="Team offsite", approvers=approvers, description="Two days."
    )
    return services.document_submit(document=document, submitted_by=requester)
