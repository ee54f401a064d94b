import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from notifications.models import Notification, PublisherScope
from workflow.management.commands.seed_demo import DEMO_PASSWORD, SERVICE_USER
from workflow.models import Department, DepartmentMembership, Document, Task

pytestmark = pytest.mark.django_db


def counts():
    return (
        get_user_model().objects.count(),
        Department.objects.count(),
        DepartmentMembership.objects.count(),
        Document.objects.count(),
        Task.objects.count(),
        Notification.objects.count(),
        PublisherScope.objects.count(),
    )


def test_seed_demo_creates_a_document_in_review_and_is_idempotent(capsys):
    call_command("seed_demo")
    first = counts()
    call_command("seed_demo")

    assert counts() == first
    document = Document.objects.get()
    assert document.status == Document.Status.IN_REVIEW
    assert Task.objects.get(status=Task.Status.OPEN).assignee.username == "bob"
    assert Notification.objects.get().event == "NewTask"

    User = get_user_model()
    assert User.objects.get(username="alice").check_password(DEMO_PASSWORD)
    service_user = User.objects.get(username=SERVICE_USER)
    assert service_user.has_perm("notifications.publish_notification")
    scope = PublisherScope.objects.get(publisher=service_user)  # so the demo can publish at all
    assert set(scope.departments.values_list("code", flat=True)) == {"finance", "it"}
    assert "Invoice*" in scope.events
    assert User.objects.get(username="admin").is_superuser
    output = capsys.readouterr().out
    assert DEMO_PASSWORD in output
    assert "alice" in output


def test_migrations_match_the_models():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
