"""Workflow signals become notifications: each builds the payload existing clients expect
and publishes it inside the workflow transaction that sent the signal.

These are the system's own notifications: no publisher scope applies to them, and their event names are
reserved (notifications/reserved.py), so no API publisher can forge one.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from core.durations import duration
from notifications.layer_messages import NotificationAction
from notifications.models import Notification
from notifications.reserved import (
    DOCUMENT_APPROVED_EVENT,
    DOCUMENT_REJECTED_EVENT,
    NEW_TASK_EVENT,
    TASK_DELEGATED_EVENT,
    TASK_ESCALATED_EVENT,
    TASK_REMINDER_EVENT,
)
from notifications.services.actions import NEW_TASK_ACTIONS
from notifications.services.publish import notification_publish
from notifications.services.resolution import task_subject
from workflow.models import Document

User = get_user_model()


def new_task_publish(
    *,
    task_id: int,
    document_id: int,
    assignee_id: int,
    step: int,
    requester_id: int,
    on_behalf_of_id: int | None = None,
) -> Notification:
    """The assignee's NewTask; a delegate's (out of office) says on whose behalf, in `onBehalfOf`."""
    document = Document.objects.get(pk=document_id)
    requester_name = _display_name(requester_id)
    body = f"{requester_name} asks you to approve “{document.title}” (step {step})."
    on_behalf: dict[str, object] = {}
    if on_behalf_of_id is not None:
        on_behalf["onBehalfOf"] = absent_name = _display_name(on_behalf_of_id)
        body = (
            f"{requester_name} asks {absent_name} to approve “{document.title}” (step {step}); "
            f"{absent_name} is out of office, so you decide on their behalf."
        )
    return _task_notification_publish(
        event=NEW_TASK_EVENT,
        title="New task assigned",
        body=body,
        description=f"Approve “{document.title}” requested by {requester_name}",
        document=document,
        task_id=task_id,
        step=step,
        requester_name=requester_name,
        recipient_id=assignee_id,
        **on_behalf,
        priority=Notification.Priority.HIGH,
        actions=NEW_TASK_ACTIONS,
    )


def task_delegated_publish(
    *, task_id: int, document_id: int, delegate_id: int, approver_id: int, step: int, delegated_until: str | None
) -> Notification:
    """Tell an approver who is out of office that their new task went to their delegate: in-app only (they are
    away; a push would defeat the point), and resolved with the task (same subject)."""
    document = Document.objects.get(pk=document_id)
    delegate_name = _display_name(delegate_id)
    return notification_publish(
        event=TASK_DELEGATED_EVENT,
        title="Task delegated",
        body=f"“{document.title}” (step {step}) went to {delegate_name} while you are out of office.",
        data={
            "documentId": document_id,
            "documentTitle": document.title,
            "taskId": task_id,
            "step": step,
            "delegatedTo": delegate_name,
            "delegatedUntil": delegated_until,
            "timestamp": timezone.now().isoformat(),
        },
        user_ids=[approver_id],
        document_id=document_id,
        priority=Notification.Priority.LOW,
        subject=task_subject(task_id),
        push_allowed=False,
    )


def document_approved_publish(
    *,
    document_id: int,
    requester_id: int,
    approver_id: int,
    step: int,
    is_final_step: bool,
    comment: str,
    on_behalf_of_id: int | None = None,
) -> Notification:
    document = Document.objects.get(pk=document_id)
    approver_name = _display_name(approver_id)
    behalf, on_behalf = _on_behalf(on_behalf_of_id)
    body = (
        f"{approver_name}{on_behalf} approved your document “{document.title}”."
        if is_final_step
        else f"{approver_name}{on_behalf} approved step {step} of your document “{document.title}”."
    )
    return notification_publish(
        event=DOCUMENT_APPROVED_EVENT,
        title="Document approved" if is_final_step else f"Step {step} approved",
        body=body,
        data={
            "documentId": document_id,
            "documentTitle": document.title,
            "approvedBy": approver_name,
            "step": step,
            "finalStep": is_final_step,
            "documentStatus": document.status,
            "comment": comment,
            **behalf,
            "timestamp": timezone.now().isoformat(),
        },
        user_ids=[requester_id],
        document_id=document_id,
    )


def document_rejected_publish(
    *,
    document_id: int,
    requester_id: int,
    rejected_by_id: int,
    step: int,
    comment: str,
    on_behalf_of_id: int | None = None,
) -> Notification:
    document = Document.objects.get(pk=document_id)
    rejecter_name = _display_name(rejected_by_id)
    behalf, on_behalf = _on_behalf(on_behalf_of_id)
    return notification_publish(
        event=DOCUMENT_REJECTED_EVENT,
        title="Document rejected",
        body=f"{rejecter_name}{on_behalf} rejected your document “{document.title}”: {comment}",
        data={
            "documentId": document_id,
            "documentTitle": document.title,
            "rejectedBy": rejecter_name,
            "step": step,
            "comment": comment,
            **behalf,
            "timestamp": timezone.now().isoformat(),
        },
        user_ids=[requester_id],
        document_id=document_id,
        priority=Notification.Priority.HIGH,
    )


def _on_behalf(on_behalf_of_id: int | None) -> tuple[dict[str, str], str]:
    """A delegate's decision: the `onBehalfOf` data key and the words " on behalf of <name>"; else nothing."""
    if on_behalf_of_id is None:
        return {}, ""
    name = _display_name(on_behalf_of_id)
    return {"onBehalfOf": name}, f" on behalf of {name}"


def task_reminder_publish(
    *, task_id: int, document_id: int, assignee_id: int, step: int, waited_seconds: int
) -> Notification:
    """The approver left the task waiting: one reminder, less urgent than the NewTask it follows up."""
    document = Document.objects.get(pk=document_id)
    requester_name = _display_name(document.requester_id)
    waited = duration(timedelta(seconds=waited_seconds))
    return _task_notification_publish(
        event=TASK_REMINDER_EVENT,
        title="Reminder: a task waits for you",
        body=f"“{document.title}” from {requester_name} has waited {waited} for your decision (step {step}).",
        description=f"Approve “{document.title}” requested by {requester_name}: waiting {waited}",
        document=document,
        task_id=task_id,
        step=step,
        requester_name=requester_name,
        recipient_id=assignee_id,
        priority=Notification.Priority.NORMAL,
        actions=NEW_TASK_ACTIONS,  # the task can be decided from its reminder too
        waitedSeconds=waited_seconds,
        url=document_url(document_id),
    )


def task_escalation_publish(
    *, task_id: int, document_id: int, assignee_id: int, contact_id: int, step: int, waited_seconds: int
) -> Notification:
    """Nobody acted on the task in time: the department's escalation contact hears who holds it and since when,
    with a link to the document."""
    document = Document.objects.select_related("department").get(pk=document_id)
    approver_name = _display_name(assignee_id)
    requester_name = _display_name(document.requester_id)
    waited = duration(timedelta(seconds=waited_seconds))
    return _task_notification_publish(
        event=TASK_ESCALATED_EVENT,
        title="Escalated: a task is waiting too long",
        body=(
            f"{approver_name} has not decided on “{document.title}” (step {step}, requested by {requester_name}) "
            f"for {waited}."
        ),
        description=f"{approver_name} has not decided on “{document.title}” for {waited}",
        document=document,
        task_id=task_id,
        step=step,
        requester_name=requester_name,
        recipient_id=contact_id,
        priority=Notification.Priority.HIGH,
        approver=approver_name,
        department=document.department.code,
        waitedSeconds=waited_seconds,
        url=document_url(document_id),
    )


def _task_notification_publish(
    *,
    event: str,
    title: str,
    body: str,
    description: str,
    document: Document,
    task_id: int,
    step: int,
    requester_name: str,
    recipient_id: int,
    priority: str,
    actions: list[NotificationAction] | None = None,
    **extra_data: object,
) -> Notification:
    """A notification about an open task (NewTask, its reminder, its escalation): the fields every one carries,
    and the task's subject, so that all of them are resolved together when the task closes."""
    return notification_publish(
        event=event,
        title=title,
        body=body,
        data={
            "documentId": document.pk,
            "documentTitle": document.title,
            "taskId": task_id,
            "step": step,
            "requestedBy": requester_name,
            **extra_data,
            "description": description,
            "timestamp": timezone.now().isoformat(),
        },
        user_ids=[recipient_id],
        document_id=document.pk,
        priority=priority,
        subject=task_subject(task_id),
        actions=actions,
    )


def document_url(document_id: int) -> str:
    """The document's page, as a path on this server (clients know the origin they talk to)."""
    return reverse("web:document", args=[document_id])


def _display_name(user_id: int) -> str:
    user = User.objects.get(pk=user_id)
    return user.get_full_name() or user.get_username()
