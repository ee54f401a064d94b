"""The workflow admin: a document's page tells its story as a timeline (steps, decisions, tasks, its
notifications); documents, steps and tasks are read-only; departments stay editable."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from notifications.models import Notification
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow import services
from workflow.models import ApprovalStep, Department, Document, Task
from workflow.timeline import document_timeline, follow_up_rule

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


def test_a_withdrawn_documents_timeline_says_so_and_waits_for_nothing():
    requester = UserFactory(username="ada", first_name="Ada", last_name="Lovelace")
    bob, carol = UserFactory(username="bob"), UserFactory(username="carol")
    finance = DepartmentFactory(code="finance")
    add_members(finance, requester)
    document = services.document_create(requester=requester, department=finance, title="Trip", approvers=[bob, carol])
    services.document_submit(document=document, submitted_by=requester)
    services.document_withdraw(document=document, withdrawn_by=requester)

    whats = [entry.what for entry in document_timeline(document)]

    assert whats[-2:] == [
        "Task of step 1 cancelled (the document was withdrawn)",
        "Document withdrawn by Ada Lovelace (ada)",
    ]
    assert not any(what.startswith("Step 2") for what in whats)


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


class TestEscalation:
    """Departments set their reminder and escalation times and contact here; documents and tasks show what came of
    them (workflow/services/escalation.py)."""

    @pytest.fixture
    def finance(self):
        department = DepartmentFactory(
            code="finance", remind_after=timedelta(hours=1), escalate_after=timedelta(hours=2)
        )
        department.escalation_contact = UserFactory(username="carol", first_name="Carol", last_name="Chief")
        department.save(update_fields=["escalation_contact"])
        return department

    @pytest.fixture
    def ignored(self, finance):
        """Bob's task of step 1, reminded after 1 h and escalated to Carol after 2 h."""
        requester = UserFactory(username="ada", first_name="Ada", last_name="Lovelace")
        bob = UserFactory(username="bob", first_name="Bob", last_name="Builder")
        add_members(finance, requester)
        document = services.document_create(requester=requester, department=finance, title="Laptop", approvers=[bob])
        services.document_submit(document=document, submitted_by=requester)
        opened = Task.objects.get(document=document).created_at
        services.overdue_tasks_escalate(now=opened + timedelta(hours=1))
        services.overdue_tasks_escalate(now=opened + timedelta(hours=2, minutes=5))
        return document

    def test_the_timeline_tells_who_was_reminded_and_who_it_was_escalated_to(self, ignored):
        timeline = document_timeline(ignored)

        assert [entry.what for entry in timeline][2:-1] == [
            "Task opened for step 1: Bob Builder (bob)",
            "Reminded Bob Builder (bob): the task of step 1 waited 1 h",
            "Escalated to Carol Chief (carol): the task of step 1 waited 2 h 5 min",
        ]
        task = Task.objects.get(document=ignored)
        assert [entry.at for entry in timeline[3:5]] == [task.reminded_at, task.escalated_at]
        assert timeline[-1].what == "Step 1: pending decision"
        assert follow_up_rule(ignored) == (
            "Open tasks: reminder after 1 h (department finance); escalation after 2 h (department finance), "
            "to Carol Chief (carol)."
        )

    def test_an_escalation_with_nobody_to_tell_says_so(self, finance):
        finance.escalation_contact = None
        finance.save(update_fields=["escalation_contact"])
        requester, bob = UserFactory(), UserFactory(username="bob", first_name="", last_name="")
        add_members(finance, requester)
        document = services.document_create(requester=requester, department=finance, title="Desk", approvers=[bob])
        services.document_submit(document=document, submitted_by=requester)
        document = services.document_escalation_set(
            document=document, remind_after=None, escalate_after=timedelta(hours=3)
        )
        services.overdue_tasks_escalate(now=Task.objects.get().created_at + timedelta(hours=3))

        last = document_timeline(document)[-2]  # before the step still waiting
        assert (last.what, last.kind) == ("Not escalated: the task of step 1 waited 3 h, and nobody to tell", "failure")
        assert last.detail == "Department finance has no escalation contact (other than the approver)"
        assert follow_up_rule(document) == (
            "Open tasks: reminder after 1 h (department finance); escalation after 3 h (this document's time), "
            "to nobody: the department has no contact."
        )

    def test_the_document_page_shows_the_rule_the_follow_ups_and_their_notifications(self, admin_client, ignored):
        page = admin_client.get(reverse("admin:workflow_document_change", args=[ignored.pk])).content.decode()

        assert "reminder after 1 h (department finance)" in page
        assert "Reminded Bob Builder (bob)" in page and "Escalated to Carol Chief (carol)" in page
        for notification in Notification.objects.filter(event__in=["TaskReminder", "TaskEscalated"]):
            assert reverse("admin:notifications_notification_change", args=[notification.pk]) in page

    def test_the_task_list_shows_when_it_was_reminded_and_escalated(self, admin_client, ignored):
        page = admin_client.get(reverse("admin:workflow_task_changelist")).content.decode()

        assert re.search(rf"{AT_SECOND} to Carol Chief \(carol\)", page)
        assert "Reminded at" in page

    def test_staff_set_a_documents_own_times_from_its_page(self, admin_client, ignored):
        follow_ups = reverse("admin:workflow_document_follow_ups", args=[ignored.pk])
        page = admin_client.get(reverse("admin:workflow_document_change", args=[ignored.pk])).content.decode()
        assert f'action="{follow_ups}"' in page

        response = admin_client.post(follow_ups, {"remind_after": "", "escalate_after": "3 00:00:00"}, follow=True)

        ignored.refresh_from_db()
        assert (ignored.remind_after, ignored.escalate_after) == (None, timedelta(days=3))
        page = response.content.decode()
        assert "Saved the document&#x27;s own reminder and escalation times." in page
        assert "escalation after 3 days (this document&#x27;s time)" in page

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"remind_after": "5 00:00:00", "escalate_after": ""}, "must come before the escalation"),
            ({"remind_after": "soon", "escalate_after": ""}, "Remind after: Enter a valid duration."),
        ],
    )
    def test_refused_document_times_change_nothing(self, admin_client, ignored, fields, message):
        response = admin_client.post(
            reverse("admin:workflow_document_follow_ups", args=[ignored.pk]), fields, follow=True
        )

        assert message in response.content.decode()
        ignored.refresh_from_db()
        assert (ignored.remind_after, ignored.escalate_after) == (None, None)

    def test_only_staff_who_may_change_departments_set_a_documents_times(self, client, ignored):
        viewer = UserFactory(is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_document"))
        client.force_login(viewer)
        follow_ups = reverse("admin:workflow_document_follow_ups", args=[ignored.pk])

        page = client.get(reverse("admin:workflow_document_change", args=[ignored.pk])).content.decode()
        response = client.post(follow_ups, {"remind_after": "00:10:00", "escalate_after": ""})

        assert "follow-ups-form" not in page
        assert response.status_code == 403
        ignored.refresh_from_db()
        assert ignored.remind_after is None

    def department_form(self, **fields) -> dict:
        return {
            "code": "legal",
            "name": "Legal",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "_save": "Save",
            **fields,
        }

    def test_staff_set_a_departments_times_and_contact(self, admin_client):
        carol = UserFactory(username="carol")

        response = admin_client.post(
            reverse("admin:workflow_department_add"),
            self.department_form(remind_after="1 00:00:00", escalate_after="2 12:00:00", escalation_contact=carol.pk),
        )

        assert response.status_code == 302, response.content.decode()[-2000:]
        legal = Department.objects.get(code="legal")
        assert (legal.remind_after, legal.escalate_after, legal.escalation_contact) == (
            timedelta(days=1),
            timedelta(days=2, hours=12),
            carol,
        )

    @pytest.mark.parametrize(
        ("fields", "error"),
        [
            ({"remind_after": "2 00:00:00", "escalate_after": "1 00:00:00"}, "Remind before escalating"),
            ({"remind_after": "00:00:00"}, "greater than or equal to 0:00:01"),
        ],
    )
    def test_refused_times_save_nothing(self, admin_client, fields, error):
        response = admin_client.post(reverse("admin:workflow_department_add"), self.department_form(**fields))

        assert response.status_code == 200
        assert error in response.content.decode()
        assert not Department.objects.filter(code="legal").exists()
