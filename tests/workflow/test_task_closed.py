"""`task_closed` wherever a task closes, `document_withdraw`, and the NewTask notifications they resolve."""

import pytest

from notifications.models import Delivery, Notification
from tests.support.factories import UserFactory
from tests.support.signals import signals_sent
from workflow import services, signals
from workflow.errors import WorkflowError
from workflow.models import Document, Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_review(requester, department, approvers):
    document = services.document_create(requester=requester, department=department, title="Budget", approvers=approvers)
    return services.document_submit(document=document, submitted_by=requester)


@pytest.fixture
def closed_tasks():
    """Every `task_closed` sent during the test, as its keyword arguments."""
    with signals_sent(signals.task_closed) as sent:
        yield sent


def new_task_delivery(assignee) -> Delivery:
    return Delivery.objects.get(recipient=assignee, notification__event="NewTask")


def open_task(document) -> Task:
    return Task.objects.get(document=document, status=Task.Status.OPEN)


class TestTaskClosed:
    def test_approval_closes_the_task_as_done_and_resolves_its_new_task(self, in_review, approvers, closed_tasks):
        task = open_task(in_review)

        services.step_approve(document=in_review, approver=approvers[0])

        assert closed_tasks == [
            {
                "task_id": task.pk,
                "document_id": in_review.pk,
                "assignee_id": approvers[0].pk,
                "outcome": "done",
                "reason": "approved",
            }
        ]
        first = new_task_delivery(approvers[0])
        assert (first.status, first.notification.resolution) == ("resolved", "done")
        assert first.notification.subject == f"task:{task.pk}"
        assert new_task_delivery(approvers[1]).status == "pending"  # the next step's task is open

    def test_rejection_closes_the_task_as_done(self, in_review, approvers, closed_tasks):
        services.document_reject(document=in_review, approver=approvers[0], comment="no")

        assert [(sent["outcome"], sent["reason"]) for sent in closed_tasks] == [("done", "rejected")]
        assert new_task_delivery(approvers[0]).status == "resolved"

    def test_reassignment_cancels_the_old_task_and_the_new_approver_gets_a_new_task(
        self, in_review, approvers, department, closed_tasks
    ):
        old_task = open_task(in_review)
        newcomer = UserFactory()

        services.step_reassign(document=in_review, reassigned_by=approvers[0], new_approver=newcomer)

        assert [(sent["task_id"], sent["outcome"], sent["reason"]) for sent in closed_tasks] == [
            (old_task.pk, "cancelled", "reassigned")
        ]
        old = new_task_delivery(approvers[0])
        assert (old.status, old.notification.resolution) == ("resolved", "reassigned")
        new = new_task_delivery(newcomer)
        assert new.status == "pending"
        assert new.notification.subject == f"task:{open_task(in_review).pk}"

    def test_a_refused_transition_closes_nothing(self, in_review, approvers, closed_tasks):
        with pytest.raises(WorkflowError):
            services.step_approve(document=in_review, approver=approvers[1])
        assert closed_tasks == []
        assert new_task_delivery(approvers[0]).status == "pending"


class TestWithdraw:
    def test_the_requester_withdraws_a_document_in_review(self, in_review, requester, approvers, closed_tasks):
        task = open_task(in_review)
        withdrawn = []
        signals.document_withdrawn.connect(
            lambda sender, **kwargs: withdrawn.append(kwargs), dispatch_uid="tests.withdrawn", weak=False
        )
        try:
            document = services.document_withdraw(document=in_review, withdrawn_by=requester)
        finally:
            signals.document_withdrawn.disconnect(dispatch_uid="tests.withdrawn")

        assert document.status == Document.Status.WITHDRAWN
        assert list(document.steps.values_list("order", "status")) == [(1, "cancelled"), (2, "cancelled")]
        task.refresh_from_db()
        assert (task.status, task.closed_at is not None) == (Task.Status.CANCELLED, True)
        assert [(sent["task_id"], sent["outcome"], sent["reason"]) for sent in closed_tasks] == [
            (task.pk, "cancelled", "withdrawn")
        ]
        assert [(kw["document_id"], kw["requester_id"], kw["withdrawn_by_id"]) for kw in withdrawn] == [
            (in_review.pk, requester.pk, requester.pk)
        ]
        resolved = new_task_delivery(approvers[0])
        assert (resolved.status, resolved.notification.resolution) == ("resolved", "withdrawn")
        # Nothing can happen to it any more.
        with pytest.raises(WorkflowError, match="only documents in review"):
            services.step_approve(document=document, approver=approvers[0])

    def test_only_the_requester_may_withdraw(self, in_review, approvers):
        with pytest.raises(WorkflowError) as refused:
            services.document_withdraw(document=in_review, withdrawn_by=approvers[0])
        assert refused.value.code == "forbidden"
        in_review.refresh_from_db()
        assert in_review.status == Document.Status.IN_REVIEW
        assert open_task(in_review).assignee_id == approvers[0].pk

    @pytest.mark.parametrize("state", ["draft", "approved", "withdrawn"])
    def test_only_a_document_in_review_can_be_withdrawn(self, state, requester, department, approvers):
        document = services.document_create(
            requester=requester, department=department, title="Budget", approvers=approvers[:1]
        )
        if state != "draft":
            services.document_submit(document=document, submitted_by=requester)
        if state == "approved":
            services.step_approve(document=document, approver=approvers[0])
        if state == "withdrawn":
            services.document_withdraw(document=document, withdrawn_by=requester)
        notifications_before = Notification.objects.filter(resolved_at__isnull=False).count()

        with pytest.raises(WorkflowError) as refused:
            services.document_withdraw(document=document, withdrawn_by=requester)

        assert refused.value.code == "invalid_transition"
        document.refresh_from_db()
        assert document.status == state
        assert Notification.objects.filter(resolved_at__isnull=False).count() == notifications_before
