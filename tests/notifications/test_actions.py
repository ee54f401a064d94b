"""Performing a notification's action (notifications/services/actions.py), on real PostgreSQL: a NewTask's approve
and reject run the workflow as the recipient, once; every refusal changes nothing."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from notifications.errors import NotificationError
from notifications.models import ActionCallback, ActionPerformance, Delivery, Notification
from notifications.services import delivery_push, notification_action_perform, notification_retract
from notifications.services.actions import NEW_TASK_ACTIONS
from tests.support.actions import action, invoice_with_actions
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.threads import Worker, wait_for_blocked_backends
from workflow import services as workflow
from workflow.errors import WorkflowError
from workflow.models import ApprovalStep, Department, Document, Task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def document(requester, department, approvers):
    document = workflow.document_create(requester=requester, department=department, title="Q3", approvers=approvers)
    return workflow.document_submit(document=document, submitted_by=requester)


def new_task_of(user) -> Notification:
    return Notification.objects.get(event="NewTask", deliveries__recipient=user, resolved_at__isnull=True)


def state(document: Document) -> tuple:
    """Everything an action could change: the document, its steps and tasks, notifications, deliveries, records."""
    document.refresh_from_db()
    return (
        document.status,
        list(document.steps.values_list("status", "comment")),
        list(Task.objects.filter(document=document).values_list("status", flat=True)),
        list(Notification.objects.order_by("created_at").values_list("event", "resolution")),
        list(Delivery.objects.order_by("id").values_list("status", "read_at")),
        ActionPerformance.objects.count(),
    )


def test_new_task_offers_approve_and_reject_which_needs_a_comment(document, approvers):
    notification = new_task_of(approvers[0])
    assert notification.actions == [
        {"id": "approve", "label": "Approve", "requires_comment": False},
        {"id": "reject", "label": "Reject", "requires_comment": True},
    ]
    assert notification.actions == NEW_TASK_ACTIONS


def test_a_reminder_offers_the_same_actions_and_approving_from_it_resolves_both(document, approvers):
    Department.objects.filter(pk=document.department_id).update(remind_after=timedelta(hours=1))
    task = Task.objects.get(document=document, status=Task.Status.OPEN)
    workflow.task_remind(task_id=task.pk, now=timezone.now() + timedelta(days=1))
    reminder = Notification.objects.get(event="TaskReminder", deliveries__recipient=approvers[0])
    assert reminder.actions == NEW_TASK_ACTIONS

    result = notification_action_perform(notification_id=reminder.pk, user=approvers[0], action="approve")

    assert result.outcome == "approved"
    assert document.steps.get(order=1).status == "approved"
    assert Notification.objects.filter(subject=f"task:{task.pk}", resolution="done").count() == 2


def test_a_pushed_new_task_carries_its_actions_as_json_in_the_fcm_data(fcm, document, approvers):
    phone = DeviceFactory(user=approvers[0])
    delivery = Delivery.objects.get(notification=new_task_of(approvers[0]))

    assert delivery_push(delivery_id=delivery.pk) == "pushed"

    [message] = fcm.accepted(phone.token)
    assert all(isinstance(value, str) for value in message["data"].values())
    assert json.loads(message["data"]["actions"]) == NEW_TASK_ACTIONS


def test_approve_decides_the_step_as_the_recipient_and_resolves_the_task(document, approvers):
    notification = new_task_of(approvers[0])

    result = notification_action_perform(
        notification_id=notification.pk, user=approvers[0], action="approve", comment="fine"
    )

    assert (result.action, result.outcome, result.already_performed) == ("approve", "approved", False)
    step = document.steps.get(order=1)
    assert (step.status, step.decided_by_id, step.comment) == ("approved", approvers[0].pk, "fine")
    notification.refresh_from_db()
    assert notification.resolution == "done"
    assert Delivery.objects.get(notification=notification).status == "resolved"
    assert new_task_of(approvers[1]).actions == NEW_TASK_ACTIONS  # the next step's task
    performance = ActionPerformance.objects.get()
    assert (performance.user_id, performance.action, performance.outcome, performance.callback_status) == (
        approvers[0].pk,
        "approve",
        "approved",
        "",
    )


def test_performing_the_same_action_again_answers_the_first_result_and_decides_nothing(document, approvers):
    notification = new_task_of(approvers[0])
    first = notification_action_perform(notification_id=notification.pk, user=approvers[0], action="approve")
    before = state(document)

    again = notification_action_perform(notification_id=str(notification.pk), user=approvers[0], action="approve")

    assert again.already_performed is True
    assert (again.outcome, again.performed_at) == (first.outcome, first.performed_at)
    assert state(document) == before


def test_reject_needs_a_comment_and_decides_the_document_with_it(document, approvers, requester):
    notification = new_task_of(approvers[0])
    before = state(document)
    with pytest.raises(NotificationError) as refused:
        notification_action_perform(notification_id=notification.pk, user=approvers[0], action="reject", comment=" ")
    assert (refused.value.code, refused.value.fields()) == (
        "invalid",
        {"comment": ["'reject' needs a comment saying why."]},
    )
    assert state(document) == before

    result = notification_action_perform(
        notification_id=notification.pk, user=approvers[0], action="reject", comment="Over budget"
    )

    assert result.outcome == "rejected"
    document.refresh_from_db()
    assert document.status == "rejected"
    assert document.steps.get(order=1).comment == "Over budget"
    assert Notification.objects.filter(event="DocumentRejected", deliveries__recipient=requester).exists()


def test_a_different_action_after_a_decision_is_a_conflict(document, approvers):
    notification = new_task_of(approvers[0])
    notification_action_perform(notification_id=notification.pk, user=approvers[0], action="approve")
    before = state(document)

    with pytest.raises(NotificationError) as refused:
        notification_action_perform(notification_id=notification.pk, user=approvers[0], action="reject", comment="no")

    assert refused.value.code == "already_performed"
    assert "already performed 'approve'" in refused.value.message
    assert state(document) == before


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("decided_on_the_document_page", "invalid_transition"),
        ("withdrawn", "invalid_transition"),
        ("reassigned", "invalid_transition"),
    ],
)
def test_an_action_on_a_task_closed_another_way_is_a_conflict(document, approvers, requester, how, code):
    notification = new_task_of(approvers[0])
    if how == "decided_on_the_document_page":
        workflow.step_approve(document=document, approver=approvers[0])
    elif how == "withdrawn":
        workflow.document_withdraw(document=document, withdrawn_by=requester)
    else:
        workflow.step_reassign(document=document, reassigned_by=approvers[0], new_approver=UserFactory())
    before = state(document)

    with pytest.raises(NotificationError) as refused:
        notification_action_perform(notification_id=notification.pk, user=approvers[0], action="approve")

    assert refused.value.code == code
    assert refused.value.message.startswith("Too late for 'approve'")
    assert state(document) == before


@pytest.mark.parametrize("action", ["archive", "APPROVE", "", "x" * 500])
def test_an_unknown_action_is_refused_naming_the_field(document, approvers, action):
    notification = new_task_of(approvers[0])
    before = state(document)

    with pytest.raises(NotificationError) as refused:
        notification_action_perform(notification_id=notification.pk, user=approvers[0], action=action)

    assert refused.value.code == "invalid"
    assert list(refused.value.fields()) == ["action"]
    assert "it offers: approve, reject" in refused.value.message
    assert state(document) == before


@pytest.mark.parametrize("whose", ["someone_elses", "unknown", "malformed"])
def test_a_notification_that_is_not_the_callers_is_not_found(document, approvers, whose):
    notification = new_task_of(approvers[0])
    notification_id = {"someone_elses": notification.pk, "unknown": "0" * 32, "malformed": "nope"}[whose]
    before = state(document)

    with pytest.raises(NotificationError) as refused:
        notification_action_perform(notification_id=notification_id, user=approvers[1], action="approve")

    assert refused.value.code == "not_found"
    assert state(document) == before


def test_the_workflow_refuses_as_it_does_on_the_document_endpoint(document, approvers):
    """Hand-edited data: the step and its task went to someone else, and the notification was left open. The
    workflow's own check answers (the step's approver, or the task's holder as a delegate, may decide)."""
    notification = new_task_of(approvers[0])
    ApprovalStep.objects.filter(document=document, order=1).update(approver=approvers[1])
    Task.objects.filter(document=document, status=Task.Status.OPEN).update(assignee=approvers[1])
    before = state(document)

    with pytest.raises(WorkflowError) as refused:
        notification_action_perform(notification_id=notification.pk, user=approvers[0], action="approve")

    assert refused.value.code == "forbidden"
    assert state(document) == before


def test_two_devices_approving_at_once_make_one_decision(document, approvers):
    notification = new_task_of(approvers[0])
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT 1 FROM workflow_document WHERE id = %s FOR UPDATE", [document.pk])
        devices = [
            Worker(notification_action_perform, notification_id=notification.pk, user=approvers[0], action="approve")
            for _ in range(2)
        ]
        for device in devices:
            device.start()
        wait_for_blocked_backends(cursor, 2)
        cursor.execute("COMMIT")  # both go at once

    results = sorted((device.outcome() for device in devices), key=lambda result: result.already_performed)

    assert [(result.outcome, result.already_performed) for result in results] == [
        ("approved", False),
        ("approved", True),
    ]
    assert results[0].performed_at == results[1].performed_at
    assert ActionPerformance.objects.count() == 1
    assert document.steps.get(order=1).status == "approved"
    assert Task.objects.filter(document=document, status="done").count() == 1
    assert Task.objects.filter(document=document, status="open").count() == 1  # the second step's, once


def test_a_publishers_action_is_recorded_with_its_callback_pending_and_reads_the_delivery(publisher_with_callback):
    recipient = UserFactory()
    notification = invoice_with_actions(
        publisher=publisher_with_callback, recipient=recipient, actions=[action("snooze", "Remind me tomorrow")]
    )

    result = notification_action_perform(notification_id=notification.pk, user=recipient, action="snooze")

    assert (result.outcome, result.already_performed) == ("recorded", False)
    performance = ActionPerformance.objects.get()
    assert (performance.callback_status, performance.callback_attempts) == ("pending", 0)
    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == "read" and delivery.read_at is not None


def test_a_retracted_notifications_action_is_too_late(publisher_with_callback):
    recipient = UserFactory()
    notification = invoice_with_actions(
        publisher=publisher_with_callback, recipient=recipient, actions=[action("pay", "Pay")]
    )
    notification_retract(notification_id=notification.pk, by=publisher_with_callback)

    with pytest.raises(NotificationError) as refused:
        notification_action_perform(notification_id=notification.pk, user=recipient, action="pay")

    assert refused.value.code == "invalid_transition"
    assert "retracted by its publisher" in refused.value.message
    assert not ActionPerformance.objects.exists()


@pytest.fixture
def publisher_with_callback(db):
    publisher = UserFactory()
    ActionCallback.objects.create(publisher=publisher, url="http://127.0.0.1:9/actions")
    return publisher
