"""Out of office: creating and cancelling delegations, and tasks that follow them (workflow/services/delegation.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Delivery, Notification
from tests.support.factories import UserFactory
from tests.support.signals import signals_sent
from workflow import selectors, services, signals
from workflow.errors import WorkflowError
from workflow.models import ApprovalStep, Delegation, Document, Task
from workflow.timeline import document_timeline

pytestmark = pytest.mark.django_db


def away(delegator, delegate, *, starts_in=timedelta(0), lasts=timedelta(days=7)) -> Delegation:
    starts_at = timezone.now() + starts_in
    return services.delegation_create(
        delegator=delegator, delegate=delegate, starts_at=starts_at, ends_at=starts_at + lasts
    )


def submitted(requester, department, approvers) -> Document:
    document = services.document_create(requester=requester, department=department, title="Budget", approvers=approvers)
    return services.document_submit(document=document, submitted_by=requester)


def open_task(document) -> Task:
    return Task.objects.get(document=document, status=Task.Status.OPEN)


@pytest.fixture
def dave():
    return UserFactory(username="dave", first_name="", last_name="")


@pytest.fixture
def assigned():
    """Every `task_assigned` sent during the test, as its keyword arguments."""
    with signals_sent(signals.task_assigned) as sent:
        yield sent


class TestCreate:
    def test_a_delegation_is_written_with_its_period(self, bob, carol):
        starts_at = timezone.now() + timedelta(days=1)

        delegation = services.delegation_create(
            delegator=bob, delegate=carol, starts_at=starts_at, ends_at=starts_at + timedelta(days=3)
        )

        assert Delegation.objects.get() == delegation
        assert (delegation.delegator, delegation.delegate, delegation.cancelled_at) == (bob, carol, None)

    @pytest.mark.parametrize(
        ("starts_in", "lasts", "field", "message"),
        [
            (timedelta(0), timedelta(0), "ends_at", "The end must come after the start."),
            (timedelta(days=-3), timedelta(days=1), "ends_at", "The end is in the past."),
        ],
    )
    def test_a_period_that_ends_before_it_starts_or_in_the_past_is_refused(
        self, bob, carol, starts_in, lasts, field, message
    ):
        with pytest.raises(WorkflowError) as error:
            away(bob, carol, starts_in=starts_in, lasts=lasts)

        assert error.value.fields() == {field: [message]}
        assert not Delegation.objects.exists()

    def test_oneself_and_an_inactive_delegate_are_refused(self, bob, carol):
        with pytest.raises(WorkflowError) as to_self:
            away(bob, bob)
        carol.is_active = False
        carol.save(update_fields=["is_active"])
        with pytest.raises(WorkflowError) as inactive:
            away(bob, carol)

        assert to_self.value.fields() == {"delegate": ["You cannot delegate to yourself."]}
        assert inactive.value.fields() == {"delegate": ["carol is inactive and cannot take your tasks."]}
        assert not Delegation.objects.exists()

    def test_an_overlapping_period_of_the_same_delegator_is_refused(self, bob, carol, dave):
        away(bob, carol, lasts=timedelta(days=7))

        with pytest.raises(WorkflowError) as error:
            away(bob, dave, starts_in=timedelta(days=6), lasts=timedelta(days=2))

        assert error.value.code == "overlap"
        assert list(error.value.fields()) == ["starts_at"]
        assert "You already delegate to carol" in error.value.message
        assert Delegation.objects.count() == 1

    def test_periods_that_only_touch_do_not_overlap(self, bob, carol, dave):
        first = away(bob, carol, lasts=timedelta(days=7))

        second = services.delegation_create(
            delegator=bob, delegate=dave, starts_at=first.ends_at, ends_at=first.ends_at + timedelta(days=1)
        )

        assert Delegation.objects.count() == 2
        assert second.starts_at == first.ends_at

    def test_a_cancelled_delegation_leaves_room_for_a_new_one(self, bob, carol, dave):
        first = away(bob, carol)
        services.delegation_cancel(delegation=first, cancelled_by=bob)

        away(bob, dave, starts_in=timedelta(seconds=1))

        assert Delegation.objects.filter(delegate=dave).exists()

    def test_delegating_back_directly_is_a_loop(self, bob, carol):
        away(bob, carol)

        with pytest.raises(WorkflowError) as error:
            away(carol, bob, starts_in=timedelta(days=2), lasts=timedelta(days=1))

        assert error.value.code == "loop"
        assert error.value.fields() == {
            "delegate": ["That would make a loop of delegations in this period (carol → bob → carol)."]
        }
        assert Delegation.objects.count() == 1

    def test_a_three_person_chain_back_is_a_loop(self, bob, carol, dave):
        away(bob, carol)
        away(carol, dave)

        with pytest.raises(WorkflowError) as error:
            away(dave, bob)

        assert error.value.code == "loop"
        assert "dave → bob → carol → dave" in error.value.message
        assert Delegation.objects.count() == 2

    def test_delegating_back_in_a_period_that_does_not_overlap_is_no_loop(self, bob, carol):
        away(bob, carol, lasts=timedelta(days=7))

        away(carol, bob, starts_in=timedelta(days=7), lasts=timedelta(days=7))

        assert Delegation.objects.count() == 2


class TestCancel:
    def test_cancelling_ends_it_now_and_only_its_delegator_may(self, bob, carol, dave):
        delegation = away(bob, carol)
        with pytest.raises(WorkflowError) as error:
            services.delegation_cancel(delegation=delegation, cancelled_by=dave)
        assert error.value.code == "forbidden"

        services.delegation_cancel(delegation=delegation, cancelled_by=bob)

        delegation.refresh_from_db()
        assert delegation.cancelled_at is not None
        assert delegation.ended_at == delegation.cancelled_at
        with pytest.raises(WorkflowError, match="has ended already"):
            services.delegation_cancel(delegation=delegation, cancelled_by=bob)


class TestTasksFollowDelegations:
    def test_a_task_opened_while_the_approver_is_away_goes_to_the_delegate(
        self, requester, department, bob, carol, assigned
    ):
        delegation = away(bob, carol)

        document = submitted(requester, department, [bob])

        task = open_task(document)
        assert (task.assignee, task.on_behalf_of) == (carol, bob)
        assert assigned[-1]["assignee_id"] == carol.pk
        assert assigned[-1]["on_behalf_of_id"] == bob.pk
        assert assigned[-1]["delegated_until"] == delegation.ends_at.isoformat()
        assert selectors.tasks_open_for(carol).get() == task
        assert not selectors.tasks_open_for(bob).exists()
        assert selectors.document_is_visible_to(document_id=document.pk, user=carol)

    def test_a_delegation_that_has_not_started_or_was_cancelled_does_not_apply(
        self, requester, department, bob, carol, dave, assigned
    ):
        away(bob, carol, starts_in=timedelta(hours=1))
        services.delegation_cancel(delegation=away(dave, carol), cancelled_by=dave)

        first = submitted(requester, department, [bob])
        second = submitted(requester, department, [dave])

        assert (open_task(first).assignee, open_task(first).on_behalf_of) == (bob, None)
        assert (open_task(second).assignee, open_task(second).on_behalf_of) == (dave, None)
        assert [sent["on_behalf_of_id"] for sent in assigned] == [None, None]

    def test_a_chain_resolves_to_its_end_on_behalf_of_the_approver(self, requester, department, bob, carol, dave):
        away(bob, carol)
        away(carol, dave)

        task = open_task(submitted(requester, department, [bob]))

        assert (task.assignee, task.on_behalf_of) == (dave, bob)

    def test_the_requester_never_becomes_their_own_approver(self, requester, department, bob):
        away(bob, requester)

        task = open_task(submitted(requester, department, [bob]))

        assert (task.assignee, task.on_behalf_of) == (bob, None)

    def test_a_delegate_deactivated_since_is_skipped(self, requester, department, bob, carol):
        away(bob, carol)
        carol.is_active = False
        carol.save(update_fields=["is_active"])

        task = open_task(submitted(requester, department, [bob]))

        assert (task.assignee, task.on_behalf_of) == (bob, None)

    def test_a_chain_stops_before_a_delegate_deactivated_since(self, requester, department, bob, carol, dave):
        away(bob, carol)
        away(carol, dave)
        dave.is_active = False
        dave.save(update_fields=["is_active"])

        task = open_task(submitted(requester, department, [bob]))

        assert (task.assignee, task.on_behalf_of) == (carol, bob)

    def test_a_chain_reaching_the_requester_leaves_the_task_with_the_approver(self, requester, department, bob, carol):
        away(bob, carol)
        away(carol, requester)

        task = open_task(submitted(requester, department, [bob]))

        assert (task.assignee, task.on_behalf_of) == (bob, None)

    def test_a_task_opened_before_the_delegation_stays_with_the_approver(self, requester, department, bob, carol):
        document = submitted(requester, department, [bob])

        away(bob, carol)

        assert open_task(document).assignee == bob


class TestDecideOnBehalf:
    def test_the_delegate_approves_on_behalf_of_the_approver(self, requester, department, bob, carol, approvers):
        away(bob, carol)
        document = submitted(requester, department, [bob, approvers[0]])
        assert selectors.document_actions_for(document, carol).decide

        services.step_approve(document=document, approver=carol, comment="Fine")

        step = ApprovalStep.objects.get(document=document, order=1)
        assert (step.status, step.decided_by, step.decided_on_behalf_of) == ("approved", carol, bob)
        approved = Notification.objects.get(event="DocumentApproved")
        assert approved.body == "Carol Cole on behalf of Bob Baker approved step 1 of your document “Budget”."
        assert approved.data["onBehalfOf"] == "Bob Baker"
        assert open_task(document).assignee == approvers[0]  # the next step is nobody's delegate's

    def test_the_delegate_rejects_on_behalf_of_the_approver(self, requester, department, bob, carol):
        away(bob, carol)
        document = submitted(requester, department, [bob])

        services.document_reject(document=document, approver=carol, comment="No budget")

        step = ApprovalStep.objects.get(document=document)
        assert (step.status, step.decided_by, step.decided_on_behalf_of) == ("rejected", carol, bob)
        rejected = Notification.objects.get(event="DocumentRejected")
        assert rejected.body == "Carol Cole on behalf of Bob Baker rejected your document “Budget”: No budget"

    def test_the_approver_may_still_decide_and_the_delegates_task_is_resolved(self, requester, department, bob, carol):
        away(bob, carol)
        document = submitted(requester, department, [bob])

        services.step_approve(document=document, approver=bob)

        step = ApprovalStep.objects.get(document=document)
        assert (step.decided_by, step.decided_on_behalf_of) == (bob, None)
        assert Task.objects.get(document=document).status == Task.Status.DONE
        carols = Delivery.objects.get(recipient=carol, notification__event="NewTask")
        assert (carols.status, carols.notification.resolution) == ("resolved", "done")
        bobs = Delivery.objects.get(recipient=bob, notification__event="TaskDelegated")
        assert bobs.status == "resolved"  # the same task: its note leaves bob's devices too

    def test_someone_else_may_not_decide_and_nothing_changes(self, requester, department, bob, carol, dave):
        away(bob, carol)
        document = submitted(requester, department, [bob])

        with pytest.raises(WorkflowError) as error:
            services.step_approve(document=document, approver=dave)

        assert error.value.code == "forbidden"
        assert ApprovalStep.objects.get(document=document).status == "pending"
        assert not selectors.document_actions_for(document, dave).decide

    def test_a_delegate_whose_task_was_reassigned_away_may_no_longer_decide(
        self, requester, department, bob, carol, dave
    ):
        away(bob, carol)
        document = submitted(requester, department, [bob])
        services.step_reassign(document=document, reassigned_by=bob, new_approver=dave)

        with pytest.raises(WorkflowError):
            services.step_approve(document=document, approver=carol)

        assert open_task(document).assignee == dave


class TestNotifications:
    def test_the_delegate_gets_the_new_task_and_the_approver_an_in_app_note(self, requester, department, bob, carol):
        delegation = away(bob, carol)

        document = submitted(requester, department, [bob])

        task = open_task(document)
        new_task = Notification.objects.get(event="NewTask")
        assert list(new_task.deliveries.values_list("recipient", flat=True)) == [carol.pk]
        assert new_task.data["onBehalfOf"] == "Bob Baker"
        assert "Bob Baker is out of office, so you decide on their behalf" in new_task.body
        assert new_task.push_allowed
        note = Notification.objects.get(event="TaskDelegated")
        assert list(note.deliveries.values_list("recipient", flat=True)) == [bob.pk]
        assert note.push_allowed is False
        assert note.subject == f"task:{task.pk}"
        assert note.data["delegatedTo"] == "Carol Cole"
        assert note.data["delegatedUntil"] == delegation.ends_at.isoformat()


class TestTimeline:
    def test_the_timeline_says_who_decided_on_whose_behalf(self, requester, department, bob, carol):
        delegation = away(bob, carol)
        document = submitted(requester, department, [bob])
        services.step_approve(document=document, approver=carol)

        whats = [entry.what for entry in document_timeline(document)]

        until = timezone.localtime(delegation.ends_at).strftime("%Y-%m-%d %H:%M")
        assert (
            f"Task opened for step 1: Carol Cole (carol) on behalf of Bob Baker (bob) (out of office until {until})"
            in whats
        )
        assert "Step 1 approved by Carol Cole (carol) on behalf of Bob Baker (bob)" in whats
