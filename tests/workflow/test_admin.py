"""The workflow admin: a document's page tells its story as a timeline (steps, decisions, tasks, its
notifications); documents, steps and tasks are read-only; departments stay editable."""

import re

import pytest
from django.urls import reverse

from notifications.models import Notification
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow import services
from workflow.models import ApprovalStep, Document, Task
from workflow.timeline import document_timeline

pytestmark = pytest.mark.django_db

AT_SECOND = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def rejected_document():
    """Submitted, approved at step 1 by Bob, rejected at step 2 by Carol with a comment; step 3 never opened."""
    requester = UserFactory(username="ada", first_name="Ada", last_name="Lovelace")
    bob = UserFactory(username="bob", first_name="Bob", last_name="Builder")
    carol = UserFactory(username="carol", first_name="", last_name="")
    dave = UserFactory(username="dave", first_name="", last_name="")
    finance = DepartmentFactory(code="finance")
    add_members(finance, requester)
    document = services.document_create(
        requester=requester, department=finance, title="Laptop", approvers=[bob, carol, dave]
    )
    services.document_submit(document=document, submitted_by=requester)
    services.step_approve(document=document, approver=bob, comment="fine")
    services.document_reject(document=document, approver=carol, comment="too dear")
    return Document.objects.get(pk=document.pk)


def test_the_timeline_tells_the_document_in_words_and_in_order(rejected_document):
    timeline = document_timeline(rejected_document)

    assert [entry.what for entry in timeline] == [
        "Created by Ada Lovelace (ada)",
        "Submitted for approval by Ada Lovelace (ada)",
        "Task opened for step 1: Bob Builder (bob)",
        "Task of step 1 closed: done",
        "Step 1 approved by Bob Builder (bob)",
        "Task opened for step 2: carol",
        "Task of step 2 closed: done",
        "Step 2 rejected by carol",
        "Document Rejected",
        "Step 3: waiting for earlier steps",
    ]
    assert timeline[7].detail == "Approver: carol. Comment: “too dear”"
    timed = [entry for entry in timeline if entry.at is not None]
    assert [entry.at for entry in timed] == sorted(entry.at for entry in timed)
    assert all(re.fullmatch(AT_SECOND, entry.at_text) for entry in timed)
    assert timeline[-1].at_text == "not yet"


def test_the_document_page_shows_the_timeline_and_links_its_notifications(admin_client, rejected_document):
    notifications = Notification.objects.filter(document=rejected_document)

    response = admin_client.get(reverse("admin:workflow_document_change", args=[rejected_document.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert notifications.exists()
    assert "Step 2 rejected by carol" in page and "too dear" in page
    for notification in notifications:
        assert reverse("admin:notifications_notification_change", args=[notification.pk]) in page
    assert page.index("Timeline") < page.index("Notifications about this document") < page.index("Raw fields")
    assert 'name="_save"' not in page and "deletelink" not in page


def test_the_document_page_says_which_notifications_were_resolved_and_why(admin_client, rejected_document):
    # Bob's task notification was resolved when he approved; Carol's when she rejected.
    new_tasks = Notification.objects.filter(document=rejected_document, event="NewTask").order_by("created_at")

    page = admin_client.get(reverse("admin:workflow_document_change", args=[rejected_document.pk])).content.decode()

    assert [n.resolution for n in new_tasks] == ["done", "done"]
    assert page.count("NewTask; resolved at ") == 2
    assert re.search(rf"NewTask; resolved at {AT_SECOND}: Done: the task was decided", page)


@pytest.mark.parametrize("model", ["document", "approvalstep", "task"])
def test_workflow_state_is_read_only_in_the_admin(admin_client, rejected_document, model):
    obj = {"document": rejected_document, "approvalstep": ApprovalStep.objects.first(), "task": Task.objects.first()}[
        model
    ]
    change_url = reverse(f"admin:workflow_{model}_change", args=[obj.pk])

    page = admin_client.get(change_url).content.decode()

    assert 'name="_save"' not in page and "deletelink" not in page
    assert admin_client.post(change_url, {"_save": "Save"}).status_code == 403
    assert admin_client.get(reverse(f"admin:workflow_{model}_add")).status_code == 403
    assert (
        admin_client.post(reverse(f"admin:workflow_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    )


def test_departments_stay_editable(admin_client):
    response = admin_client.post(
        reverse("admin:workflow_department_add"),
        {
            "code": "legal",
            "name": "Legal",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content.decode()[-2000:]
