"""Reminders and escalations of ignored tasks: when they are due, once only, whose times win, nobody to escalate
to, and decisions arriving at the same moment (two threads, two real database connections)."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from notifications.models import Delivery, Notification
from tests.support.factories import UserFactory, add_members
from tests.support.threads import Worker, wait_for_blocked_backends
from workflow import selectors, services, signals
from workflow.errors import WorkflowError
from workflow.models import Document, Task
from workflow.services import EscalationRound
from workflow.tasks import ESCALATION_TASK

REMIND_AFTER = timedelta(hours=1)
ESCALATE_AFTER = timedelta(hours=2)


@pytest.fixture
def contact(department):
    carol = UserFactory(first_name="Carol", last_name="Chief")
    department.escalation_contact = carol
    department.save(update_fields=["escalation_contact"])
    return carol


@pytest.fixture
def timed_department(department):
    department.remind_after, department.escalate_after = REMIND_AFTER, ESCALATE_AFTER
    department.save(update_fields=["remind_after", "escalate_after"])
    return department


@pytest.fixture
def in_review(requester, timed_department, contact, approvers):
    document = services.document_create(
        requester=requester, department=timed_department, title="Q3 travel", approvers=approvers
    )
    return services.document_submit(document=document, submitted_by=requester)


def open_task(document) -> Task:
    return Task.objects.get(document=document, status=Task.Status.OPEN)


def at(document, wait: timedelta):
    """The moment its open task has waited `wait`."""
    return open_task(document).created_at + wait


def notifications_of(event: str) -> list[Notification]:
    return list(Notification.objects.filter(event=event).order_by("created_at"))


@pytest.mark.django_db
class TestDue:
    def test_nothing_happens_before_the_reminder_time(self, in_review):
        assert services.overdue_tasks_escalate(now=at(in_review, REMIND_AFTER - timedelta(seconds=1))) == (
            EscalationRound()
        )
        assert notifications_of("TaskReminder") == []
        assert open_task(in_review).reminded_at is None

    def test_the_approver_is_reminded_once_at_a_lower_priority_about_the_same_task(self, in_review, approvers):
        task = open_task(in_review)
        moment = at(in_review, REMIND_AFTER)

        assert services.overdue_tasks_escalate(now=moment) == EscalationRound(reminded=1)
        assert services.overdue_tasks_escalate(now=at(in_review, ESCALATE_AFTER - timedelta(seconds=1))) == (
            EscalationRound()
        )

        [reminder] = notifications_of("TaskReminder")
        [new_task] = notifications_of("NewTask")
        assert (reminder.priority, new_task.priority) == ("normal", "high")
        assert reminder.subject == new_task.subject == f"task:{task.pk}"
        assert reminder.document_id == in_review.pk
        assert list(reminder.deliveries.values_list("recipient_id", flat=True)) == [approvers[0].pk]
        assert {key: reminder.data[key] for key in ("documentId", "taskId", "step", "waitedSeconds", "url")} == {
            "documentId": in_review.pk,
            "taskId": task.pk,
            "step": 1,
            "waitedSeconds": 3600,
            "url": f"/documents/{in_review.pk}/",
        }
        assert "has waited 1 h for your decision" in reminder.body
        task.refresh_from_db()
        assert (task.reminded_at, task.escalated_at) == (moment, None)

    def test_then_the_contact_is_told_once_with_a_link_to_the_document(self, in_review, approvers, contact):
        services.overdue_tasks_escalate(now=at(in_review, REMIND_AFTER))
        moment = at(in_review, ESCALATE_AFTER)

        assert services.overdue_tasks_escalate(now=moment) == EscalationRound(escalated=1)
        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(days=30))) == EscalationRound()

        [escalation] = notifications_of("TaskEscalated")
        task = open_task(in_review)
        assert list(escalation.deliveries.values_list("recipient_id", flat=True)) == [contact.pk]
        assert escalation.priority == "high"
        assert escalation.subject == f"task:{task.pk}"
        approver_name = approvers[0].get_full_name()
        assert escalation.data | {"timestamp": "-"} == {
            "documentId": in_review.pk,
            "documentTitle": "Q3 travel",
            "taskId": task.pk,
            "step": 1,
            "approver": approver_name,
            "requestedBy": in_review.requester.get_full_name(),
            "department": in_review.department.code,
            "waitedSeconds": 7200,
            "url": f"/documents/{in_review.pk}/",
            "description": f"{approver_name} has not decided on “Q3 travel” for 2 h",
            "timestamp": "-",
        }
        assert (task.escalated_at, task.escalated_to_id) == (moment, contact.pk)
        assert len(notifications_of("TaskReminder")) == 1

    def test_an_overdue_task_found_late_is_reminded_and_escalated_in_one_round(self, in_review):
        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(days=3))) == EscalationRound(
            reminded=1, escalated=1
        )

    def test_a_department_without_times_never_reminds(self, in_review, timed_department):
        timed_department.remind_after = timed_department.escalate_after = None
        timed_department.save(update_fields=["remind_after", "escalate_after"])

        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(days=365))) == EscalationRound()

    def test_escalation_without_a_reminder_time(self, in_review, timed_department):
        timed_department.remind_after = None
        timed_department.save(update_fields=["remind_after"])

        assert services.overdue_tasks_escalate(now=at(in_review, ESCALATE_AFTER)) == EscalationRound(escalated=1)
        assert notifications_of("TaskReminder") == []

    def test_only_the_current_steps_task_counts_and_a_reassigned_step_starts_afresh(self, in_review, approvers):
        newcomer = UserFactory()
        old_task = open_task(in_review)
        services.step_reassign(document=in_review, reassigned_by=approvers[0], new_approver=newcomer)
        new_task = open_task(in_review)

        due_for_old_only = old_task.created_at + REMIND_AFTER
        assert new_task.created_at + REMIND_AFTER > due_for_old_only
        assert services.overdue_tasks_escalate(now=due_for_old_only - timedelta(microseconds=1)) == EscalationRound()
        assert services.overdue_tasks_escalate(now=new_task.created_at + REMIND_AFTER) == EscalationRound(reminded=1)
        [reminder] = notifications_of("TaskReminder")
        assert reminder.subject == f"task:{new_task.pk}"
        assert list(reminder.deliveries.values_list("recipient_id", flat=True)) == [newcomer.pk]


@pytest.mark.django_db
class TestDocumentOverrides:
    @pytest.mark.parametrize(
        ("department_times", "document_times", "reminded_after", "escalated_after"),
        [
            ((REMIND_AFTER, ESCALATE_AFTER), (timedelta(minutes=10), timedelta(minutes=20)), 600, 1200),
            ((REMIND_AFTER, ESCALATE_AFTER), (None, timedelta(hours=5)), 3600, 18000),
            ((None, None), (timedelta(minutes=1), timedelta(minutes=2)), 60, 120),
        ],
        ids=["document-wins", "document-escalates-later", "department-never-document-does"],
    )
    def test_a_documents_times_override_its_departments(
        self, in_review, timed_department, department_times, document_times, reminded_after, escalated_after
    ):
        timed_department.remind_after, timed_department.escalate_after = department_times
        timed_department.save(update_fields=["remind_after", "escalate_after"])
        remind, escalate = document_times
        services.document_escalation_set(document=in_review, remind_after=remind, escalate_after=escalate)
        second = timedelta(seconds=1)

        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(seconds=reminded_after) - second)) == (
            EscalationRound()
        )
        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(seconds=reminded_after))) == (
            EscalationRound(reminded=1)
        )
        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(seconds=escalated_after) - second)) == (
            EscalationRound()
        )
        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(seconds=escalated_after))) == (
            EscalationRound(escalated=1)
        )

    @pytest.mark.parametrize(
        ("remind", "escalate", "field", "message"),
        [
            (timedelta(hours=3), None, "remind_after", "must come before the escalation"),
            (timedelta(hours=1), timedelta(hours=1), "remind_after", "must come before the escalation"),
            (timedelta(milliseconds=500), None, "remind_after", "at least 1 s"),
            (None, timedelta(0), "escalate_after", "at least 1 s"),
        ],
    )
    def test_refused_overrides_change_nothing(self, in_review, remind, escalate, field, message):
        with pytest.raises(WorkflowError, match=message) as refused:
            services.document_escalation_set(document=in_review, remind_after=remind, escalate_after=escalate)

        assert (refused.value.code, refused.value.field) == ("invalid", field)
        assert Document.objects.values_list("remind_after", "escalate_after").get(pk=in_review.pk) == (None, None)

    def test_the_department_form_refuses_a_reminder_after_the_escalation(self, timed_department):
        from django.core.exceptions import ValidationError

        timed_department.remind_after = timedelta(days=3)
        with pytest.raises(ValidationError, match="Remind before escalating"):
            timed_department.full_clean()


@pytest.mark.django_db
class TestNobodyToEscalateTo:
    @pytest.mark.parametrize("who", ["nobody", "the-approver", "an-inactive-user"])
    def test_the_escalation_is_recorded_once_without_a_recipient(self, in_review, timed_department, approvers, who):
        timed_department.escalation_contact = {
            "nobody": None,
            "the-approver": approvers[0],
            "an-inactive-user": UserFactory(is_active=False),
        }[who]
        timed_department.save(update_fields=["escalation_contact"])
        moment = at(in_review, ESCALATE_AFTER)

        assert services.overdue_tasks_escalate(now=moment) == EscalationRound(reminded=1, nobody_to_escalate_to=1)
        assert services.overdue_tasks_escalate(now=at(in_review, timedelta(days=9))) == EscalationRound()

        task = open_task(in_review)
        assert (task.escalated_at, task.escalated_to_id) == (moment, None)
        assert notifications_of("TaskEscalated") == []


@pytest.mark.django_db
class TestClosedTasks:
    def test_a_decided_task_is_never_reminded_and_the_next_steps_task_has_its_own_clock(self, in_review, approvers):
        first_task = open_task(in_review)
        services.step_approve(document=in_review, approver=approvers[0])
        second_task = open_task(in_review)

        moment = second_task.created_at + REMIND_AFTER - timedelta(microseconds=1)  # long after the first's time
        assert services.overdue_tasks_escalate(now=moment) == EscalationRound()
        first_task.refresh_from_db()
        assert (first_task.reminded_at, first_task.escalated_at) == (None, None)
        assert notifications_of("TaskReminder") == []

    @pytest.mark.parametrize("how", ["approved", "rejected", "withdrawn"])
    def test_a_closed_documents_task_is_never_reminded(self, in_review, requester, approvers, how):
        moment = at(in_review, timedelta(days=30))
        if how == "approved":
            services.step_approve(document=in_review, approver=approvers[0])
            services.step_approve(document=in_review, approver=approvers[1])
        elif how == "rejected":
            services.document_reject(document=in_review, approver=approvers[0], comment="no")
        else:
            services.document_withdraw(document=in_review, withdrawn_by=requester)

        assert services.overdue_tasks_escalate(now=moment + timedelta(days=30)) == EscalationRound()
        assert not Task.objects.filter(reminded_at__isnull=False).exists()
        assert notifications_of("TaskReminder") == notifications_of("TaskEscalated") == []

    def test_the_decision_resolves_the_reminder_and_the_escalation(self, in_review, approvers, contact):
        services.overdue_tasks_escalate(now=at(in_review, ESCALATE_AFTER))

        services.step_approve(document=in_review, approver=approvers[0])

        for event in ("NewTask", "TaskReminder", "TaskEscalated"):
            notification = Notification.objects.filter(event=event).order_by("created_at").first()
            assert (event, notification.resolution) == (event, "done")
            assert set(notification.deliveries.values_list("status", flat=True)) == {Delivery.Status.RESOLVED}


@pytest.mark.django_db(transaction=True)
class TestRaceWithADecision:
    """The escalation round and a decision on the same document at the same moment: exactly one order wins."""

    @pytest.fixture
    def hold(self):
        """hold(signal): the first receiver of `signal` to run waits, in its transaction, until released."""
        held: list = []
        inside, release = threading.Event(), threading.Event()

        def wait_inside(sender, **kwargs) -> None:
            if not inside.is_set():
                inside.set()
                assert release.wait(30), "never released"

        def hold_(signal) -> tuple[threading.Event, threading.Event]:
            signal.connect(wait_inside, dispatch_uid="tests.hold", weak=False)
            held.append(signal)
            return inside, release

        yield hold_
        release.set()
        for signal in held:
            signal.disconnect(dispatch_uid="tests.hold")

    @pytest.mark.parametrize(
        ("transition", "resolution"),
        [("approve", "done"), ("reject", "done"), ("reassign", "reassigned"), ("withdraw", "withdrawn")],
    )
    def test_a_transition_during_the_follow_ups_waits_for_them_then_resolves_them(
        self, in_review, requester, approvers, hold, redis_client, transition, resolution
    ):
        transitions = {
            "approve": lambda: services.step_approve(document=in_review, approver=approvers[0]),
            "reject": lambda: services.document_reject(document=in_review, approver=approvers[0], comment="No."),
            "reassign": lambda: services.step_reassign(
                document=in_review, reassigned_by=approvers[0], new_approver=UserFactory()
            ),
            "withdraw": lambda: services.document_withdraw(document=in_review, withdrawn_by=requester),
        }
        inside, release = hold(signals.task_escalated)  # the reminder is written, the escalation being written
        following_up = Worker(services.overdue_tasks_escalate, now=at(in_review, ESCALATE_AFTER))
        following_up.start()
        assert inside.wait(30)
        deciding = Worker(transitions[transition])
        deciding.start()
        with connection.cursor() as cursor:
            wait_for_blocked_backends(cursor, 1)  # the transition waits for the document's lock
        release.set()

        assert following_up.outcome() == EscalationRound(reminded=1, escalated=1)
        deciding.outcome()
        follow_ups = notifications_of("TaskReminder") + notifications_of("TaskEscalated")
        assert [notification.resolution for notification in follow_ups] == [resolution, resolution]
        assert {status for n in follow_ups for status in n.deliveries.values_list("status", flat=True)} == {
            Delivery.Status.RESOLVED
        }

    def test_a_reminder_during_a_decision_is_left_to_the_next_round_which_finds_nothing(
        self, in_review, approvers, hold, redis_client
    ):
        moment = at(in_review, ESCALATE_AFTER)
        inside, release = hold(signals.task_closed)
        # A rejection: no next step opens a task of its own that would be due at `moment`.
        deciding = Worker(services.document_reject, document=in_review, approver=approvers[0], comment="No budget.")
        deciding.start()
        assert inside.wait(30)

        assert services.overdue_tasks_escalate(now=moment) == EscalationRound(busy=2)  # reminder and escalation
        release.set()
        deciding.outcome()

        assert services.overdue_tasks_escalate(now=moment) == EscalationRound()
        assert notifications_of("TaskReminder") == notifications_of("TaskEscalated") == []
        assert not Task.objects.filter(reminded_at__isnull=False).exists()

    def test_started_together_every_time_one_outcome(
        self, requester, timed_department, contact, approvers, redis_client
    ):
        """No hooks: both start at one barrier, ten times. Whoever wins, a closed task never keeps an unresolved
        reminder or escalation, and the decision always succeeds."""
        outcomes: set[tuple[int, int]] = set()
        for attempt in range(10):
            document = services.document_create(
                requester=requester, department=timed_department, title=f"Race {attempt}", approvers=approvers[:1]
            )
            services.document_submit(document=document, submitted_by=requester)
            moment = at(document, ESCALATE_AFTER)
            barrier = threading.Barrier(2)

            def after_barrier(function, barrier=barrier, **kwargs):
                barrier.wait(10)
                return function(**kwargs)

            rounds = Worker(after_barrier, services.overdue_tasks_escalate, now=moment)
            deciding = Worker(after_barrier, services.step_approve, document=document, approver=approvers[0])
            rounds.start()
            deciding.start()
            outcome = rounds.outcome()
            assert deciding.outcome().status == Document.Status.APPROVED

            task = Task.objects.get(document=document)
            assert task.status == Task.Status.DONE
            # Each follow-up came wholly before the decision (marked, sent, then resolved by it) or not at all
            # (the round found the document locked or the task closed); it is never left to a later round.
            assert (outcome.reminded, outcome.escalated) == (
                task.reminded_at is not None,
                task.escalated_at is not None,
            )
            followed_up = Notification.objects.filter(document=document, event__in=["TaskReminder", "TaskEscalated"])
            assert followed_up.count() == outcome.reminded + outcome.escalated
            assert set(followed_up.values_list("resolution", flat=True)) <= {"done"}
            assert not Delivery.objects.filter(notification__in=followed_up).exclude(status="resolved").exists()
            assert services.overdue_tasks_escalate(now=moment) == EscalationRound()
            outcomes.add((outcome.reminded, outcome.escalated))
        # Not asserted (the scheduler decides), shown with -s: which orders happened.
        print("reminded, escalated before the decision:", sorted(outcomes))


def test_beat_runs_the_round_on_the_sweep_queue():
    [entry] = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == ESCALATION_TASK]
    assert entry["schedule"] == settings.WORKFLOW_ESCALATION_INTERVAL
    assert entry["options"]["queue"] == settings.SWEEP_QUEUE == settings.CELERY_TASK_ROUTES[ESCALATION_TASK]["queue"]


@pytest.mark.django_db
def test_the_celery_task_runs_one_round(in_review):
    from workflow.tasks import escalate_overdue_tasks

    Task.objects.filter(pk=open_task(in_review).pk).update(created_at=open_task(in_review).created_at - ESCALATE_AFTER)

    assert escalate_overdue_tasks() == {"reminded": 1, "escalated": 1, "nobody_to_escalate_to": 0, "busy": 0}
    assert escalate_overdue_tasks() == {"reminded": 0, "escalated": 0, "nobody_to_escalate_to": 0, "busy": 0}


@pytest.mark.django_db
def test_the_escalation_contact_sees_the_departments_documents_and_a_stranger_does_not(in_review, contact):
    assert selectors.document_visible_to(document_id=in_review.pk, user=contact) is not None
    stranger = UserFactory()
    assert selectors.document_visible_to(document_id=in_review.pk, user=stranger) is None
    add_members(in_review.department, stranger)  # a member, as before
    assert selectors.document_visible_to(document_id=in_review.pk, user=stranger) is not None
