"""Every workflow transition, the notifications it produces, and every refused transition."""

import pytest

from notifications.models import Delivery, Notification
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow import services
from workflow.errors import WorkflowError
from workflow.models import ApprovalStep, Document, Task

pytestmark = pytest.mark.django_db


def make_document(requester, department, approvers, **kwargs):
    return services.document_create(
        requester=requester, department=department, title=kwargs.pop("title", "Budget"), approvers=approvers, **kwargs
    )


def submitted_document(requester, department, approvers):
    document = make_document(requester, department, approvers)
    return services.document_submit(document=document, submitted_by=requester)


def snapshot(document):
    """Everything a refused transition must leave untouched."""
    document.refresh_from_db()
    return (
        document.status,
        list(document.steps.values_list("order", "status", "approver_id", "decided_by_id")),
        list(Task.objects.filter(document=document).values_list("id", "status", "assignee_id")),
        Notification.objects.count(),
        Delivery.objects.count(),
    )


class TestDocumentCreate:
    def test_creates_draft_with_ordered_waiting_steps(self, requester, department, approvers):
        document = make_document(requester, department, approvers, description="Flights")

        assert document.status == Document.Status.DRAFT
        assert document.description == "Flights"
        assert list(document.steps.values_list("order", "approver_id", "status")) == [
            (1, approvers[0].pk, ApprovalStep.Status.WAITING),
            (2, approvers[1].pk, ApprovalStep.Status.WAITING),
        ]
        assert not Task.objects.exists()
        assert not Notification.objects.exists()

    @pytest.mark.parametrize(
        ("title", "message"),
        [("", "needs a title"), ("   ", "needs a title"), ("x" * 201, "longer than 200")],
    )
    def test_refuses_bad_titles(self, requester, department, approvers, title, message):
        with pytest.raises(WorkflowError, match=message):
            make_document(requester, department, approvers, title=title)
        assert not Document.objects.exists()

    def test_refuses_no_approvers(self, requester, department):
        with pytest.raises(WorkflowError, match="at least one approver"):
            make_document(requester, department, [])

    def test_refuses_duplicate_approver(self, requester, department, approvers):
        with pytest.raises(WorkflowError, match="only once"):
            make_document(requester, department, [approvers[0], approvers[0]])

    def test_refuses_self_approval(self, requester, department, approvers):
        with pytest.raises(WorkflowError) as caught:
            make_document(requester, department, [approvers[0], requester])
        assert caught.value.code == "self_approval"
        assert not Document.objects.exists()

    def test_refuses_inactive_approver(self, requester, department):
        inactive = UserFactory(is_active=False)
        with pytest.raises(WorkflowError, match="Inactive"):
            make_document(requester, department, [inactive])

    def test_refuses_requester_outside_department(self, department, approvers):
        outsider = UserFactory()
        with pytest.raises(WorkflowError) as caught:
            make_document(outsider, department, approvers)
        assert caught.value.code == "not_a_member"
        assert not Document.objects.exists()


class TestDocumentSubmit:
    def test_opens_first_step_with_task_and_new_task_notification(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)

        document.refresh_from_db()
        assert document.status == Document.Status.IN_REVIEW
        assert document.submitted_at is not None
        first, second = document.steps.all()
        assert (first.status, second.status) == (ApprovalStep.Status.PENDING, ApprovalStep.Status.WAITING)
        task = Task.objects.get()
        assert (task.step_id, task.assignee_id, task.status) == (first.pk, approvers[0].pk, Task.Status.OPEN)

        notification = Notification.objects.get()
        assert notification.event == "NewTask"
        assert notification.document_id == document.pk
        assert notification.priority == Notification.Priority.HIGH
        assert notification.data["documentId"] == document.pk
        assert notification.data["taskId"] == task.pk
        assert notification.data["step"] == 1
        assert notification.data["requestedBy"] == requester.get_full_name()
        assert "Budget" in notification.data["description"]
        assert "timestamp" in notification.data
        assert list(notification.deliveries.values_list("recipient_id", "status")) == [
            (approvers[0].pk, Delivery.Status.PENDING)
        ]

    def test_submitting_twice_is_refused_and_changes_nothing(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        before = snapshot(document)

        with pytest.raises(WorkflowError, match="only drafts can be submitted"):
            services.document_submit(document=document, submitted_by=requester)
        assert snapshot(document) == before

    def test_only_the_requester_submits(self, requester, department, approvers):
        document = make_document(requester, department, approvers)
        before = snapshot(document)

        with pytest.raises(WorkflowError) as caught:
            services.document_submit(document=document, submitted_by=approvers[0])
        assert caught.value.code == "forbidden"
        assert snapshot(document) == before


class TestStepApprove:
    def test_first_approval_notifies_requester_and_opens_next_step(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)

        services.step_approve(document=document, approver=approvers[0], comment=" fine ")

        document.refresh_from_db()
        assert document.status == Document.Status.IN_REVIEW
        first, second = document.steps.all()
        assert (first.status, first.decided_by_id, first.comment) == (
            ApprovalStep.Status.APPROVED,
            approvers[0].pk,
            "fine",
        )
        assert first.decided_at is not None
        assert second.status == ApprovalStep.Status.PENDING
        assert list(Task.objects.order_by("id").values_list("assignee_id", "status")) == [
            (approvers[0].pk, Task.Status.DONE),
            (approvers[1].pk, Task.Status.OPEN),
        ]

        approved = Notification.objects.get(event="DocumentApproved")
        assert approved.data["documentId"] == document.pk
        assert approved.data["approvedBy"] == approvers[0].get_full_name()
        assert approved.data["step"] == 1
        assert approved.data["finalStep"] is False
        assert approved.data["comment"] == "fine"
        assert "timestamp" in approved.data
        assert list(approved.deliveries.values_list("recipient_id", flat=True)) == [requester.pk]

        new_tasks = Notification.objects.filter(event="NewTask").order_by("created_at")
        assert [n.deliveries.get().recipient_id for n in new_tasks] == [approvers[0].pk, approvers[1].pk]

    def test_last_approval_approves_the_document(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        services.step_approve(document=document, approver=approvers[0])

        services.step_approve(document=document, approver=approvers[1])

        document.refresh_from_db()
        assert document.status == Document.Status.APPROVED
        assert document.decided_at is not None
        assert not Task.objects.filter(status=Task.Status.OPEN).exists()
        final = Notification.objects.filter(event="DocumentApproved").order_by("created_at").last()
        assert final.data["finalStep"] is True
        assert final.data["documentStatus"] == Document.Status.APPROVED
        assert final.title == "Document approved"

    def test_someone_else_cannot_approve(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        before = snapshot(document)

        for intruder in (approvers[1], requester, UserFactory()):
            with pytest.raises(WorkflowError, match="not yours to decide") as caught:
                services.step_approve(document=document, approver=intruder)
            assert caught.value.code == "forbidden"
        assert snapshot(document) == before

    def test_draft_cannot_be_approved(self, requester, department, approvers):
        document = make_document(requester, department, approvers)
        before = snapshot(document)

        with pytest.raises(WorkflowError, match="only documents in review can be approved"):
            services.step_approve(document=document, approver=approvers[0])
        assert snapshot(document) == before

    def test_rejected_document_cannot_be_approved(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        services.document_reject(document=document, approver=approvers[0], comment="Too expensive")
        before = snapshot(document)

        with pytest.raises(WorkflowError, match="is rejected"):
            services.step_approve(document=document, approver=approvers[0])
        with pytest.raises(WorkflowError, match="is rejected"):
            services.step_approve(document=document, approver=approvers[1])
        assert snapshot(document) == before

    def test_approved_document_cannot_be_approved_again(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers[:1])
        services.step_approve(document=document, approver=approvers[0])
        before = snapshot(document)

        with pytest.raises(WorkflowError, match="is approved"):
            services.step_approve(document=document, approver=approvers[0])
        assert snapshot(document) == before


class TestDocumentReject:
    def test_rejection_closes_task_and_notifies_requester(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)

        services.document_reject(document=document, approver=approvers[0], comment="Over budget")

        document.refresh_from_db()
        assert document.status == Document.Status.REJECTED
        assert document.decided_at is not None
        first, second = document.steps.all()
        assert (first.status, first.comment) == (ApprovalStep.Status.REJECTED, "Over budget")
        assert second.status == ApprovalStep.Status.WAITING
        assert not Task.objects.filter(status=Task.Status.OPEN).exists()
        rejected = Notification.objects.get(event="DocumentRejected")
        assert rejected.data["rejectedBy"] == approvers[0].get_full_name()
        assert rejected.data["comment"] == "Over budget"
        assert rejected.data["step"] == 1
        assert rejected.deliveries.get().recipient_id == requester.pk

    def test_rejection_needs_a_comment(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        before = snapshot(document)

        with pytest.raises(WorkflowError, match="needs a comment"):
            services.document_reject(document=document, approver=approvers[0], comment="  ")
        assert snapshot(document) == before

    def test_only_the_current_approver_rejects(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        before = snapshot(document)

        with pytest.raises(WorkflowError, match="not yours"):
            services.document_reject(document=document, approver=approvers[1], comment="No")
        assert snapshot(document) == before


class TestStepReassign:
    def test_reassign_cancels_old_task_and_notifies_new_approver(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        substitute = UserFactory()

        step = services.step_reassign(document=document, reassigned_by=approvers[0], new_approver=substitute)

        assert step.approver_id == substitute.pk
        assert step.status == ApprovalStep.Status.PENDING
        assert list(Task.objects.order_by("id").values_list("assignee_id", "status")) == [
            (approvers[0].pk, Task.Status.CANCELLED),
            (substitute.pk, Task.Status.OPEN),
        ]
        latest = Notification.objects.filter(event="NewTask").order_by("created_at").last()
        assert latest.deliveries.get().recipient_id == substitute.pk
        # The substitute can now decide; the previous approver cannot.
        with pytest.raises(WorkflowError):
            services.step_approve(document=document, approver=approvers[0])
        services.step_approve(document=document, approver=substitute)

    def test_staff_may_reassign(self, requester, department, approvers):
        document = submitted_document(requester, department, approvers)
        staff, substitute = UserFactory(is_staff=True), UserFactory()

        services.step_reassign(document=document, reassigned_by=staff, new_approver=substitute)

        first_step = document.steps.get(order=1)
        assert (first_step.approver_id, first_step.status) == (substitute.pk, ApprovalStep.Status.PENDING)
        assert list(Task.objects.order_by("id").values_list("assignee_id", "status")) == [
            (approvers[0].pk, Task.Status.CANCELLED),
            (substitute.pk, Task.Status.OPEN),
        ]

    @pytest.mark.parametrize("case", ["outsider", "requester_as_new", "same_approver", "inactive"])
    def test_refused_reassignments_change_nothing(self, requester, department, approvers, case):
        document = submitted_document(requester, department, approvers)
        by, new = {
            "outsider": (UserFactory(), UserFactory()),
            "requester_as_new": (approvers[0], requester),
            "same_approver": (approvers[0], approvers[0]),
            "inactive": (approvers[0], UserFactory(is_active=False)),
        }[case]
        before = snapshot(document)

        with pytest.raises(WorkflowError):
            services.step_reassign(document=document, reassigned_by=by, new_approver=new)
        assert snapshot(document) == before


class TestDepartmentScopes:
    def test_requester_in_several_departments(self, approvers):
        finance, legal = DepartmentFactory(), DepartmentFactory()
        requester = UserFactory()
        add_members(finance, requester)
        add_members(legal, requester)

        document = make_document(requester, legal, approvers)
        assert document.department == legal
