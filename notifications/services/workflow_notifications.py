"""Workflow signals become notifications: each builds the payload existing clients expect
and publishes it inside the workflow transaction that sent the signal.

These are the system's own notifications: no publisher scope applies to them, and their event names are
reserved (notifications/reserved.py), so no API publisher can forge one.
"""

from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.models import Notification
from notifications.reserved import (
    DOCUMENT_APPROVED_EVENT,
    DOCUMENT_REJECTED_EVENT,
    NEW_TASK_EVENT,
    TASK_DELEGATED_EVENT,
)
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
    data = {
        "documentId": document_id,
        "documentTitle": document.title,
        "taskId": task_id,
        "step": step,
        "requestedBy": requester_name,
        "description": f"Approve “{document.title}” requested by {requester_name}",
        "timestamp": timezone.now().isoformat(),
    }
    body = f"{requester_name} asks you to approve “{document.title}” (step {step})."
    if on_behalf_of_id is not None:
        data["onBehalfOf"] = absent_name = _display_name(on_behalf_of_id)
        body = (
            f"{requester_name} asks {absent_name} to approve “{document.title}” (step {step}); "
            f"{absent_name} is out of office, so you decide on their behalf."
        )
    return notification_publish(
        event=NEW_TASK_EVENT,
        title="New task assigned",
        body=body,
        data=data,
        user_ids=[assignee_id],
        document_id=document_id,
        priority=Notification.Priority.HIGH,
        subject=task_subject(task_id),
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


def _display_name(user_id: int) -> str:
    user = User.objects.get(pk=user_id)
    return user.get_full_name() or user.get_username()
