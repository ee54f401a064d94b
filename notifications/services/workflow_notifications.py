"""Workflow signals become notifications: each builds the payload existing clients expect
and publishes it inside the workflow transaction that sent the signal.

These are the system's own notifications: no publisher scope applies to them, and their event names are
reserved (notifications/reserved.py), so no API publisher can forge one.
"""

from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.models import Notification
from notifications.reserved import DOCUMENT_APPROVED_EVENT, DOCUMENT_REJECTED_EVENT, NEW_TASK_EVENT
from notifications.services.actions import NEW_TASK_ACTIONS
from notifications.services.publish import notification_publish
from notifications.services.resolution import task_subject
from workflow.models import Document

User = get_user_model()


def new_task_publish(*, task_id: int, document_id: int, assignee_id: int, step: int, requester_id: int) -> Notification:
    document = Document.objects.get(pk=document_id)
    requester_name = _display_name(requester_id)
    return notification_publish(
        event=NEW_TASK_EVENT,
        title="New task assigned",
        body=f"{requester_name} asks you to approve “{document.title}” (step {step}).",
        data={
            "documentId": document_id,
            "documentTitle": document.title,
            "taskId": task_id,
            "step": step,
            "requestedBy": requester_name,
            "description": f"Approve “{document.title}” requested by {requester_name}",
            "timestamp": timezone.now().isoformat(),
        },
        user_ids=[assignee_id],
        document_id=document_id,
        priority=Notification.Priority.HIGH,
        subject=task_subject(task_id),
        actions=NEW_TASK_ACTIONS,
    )


def document_approved_publish(
    *, document_id: int, requester_id: int, approver_id: int, step: int, is_final_step: bool, comment: str
) -> Notification:
    document = Document.objects.get(pk=document_id)
    approver_name = _display_name(approver_id)
    body = (
        f"{approver_name} approved your document “{document.title}”."
        if is_final_step
        else f"{approver_name} approved step {step} of your document “{document.title}”."
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
            "timestamp": timezone.now().isoformat(),
        },
        user_ids=[requester_id],
        document_id=document_id,
    )


def document_rejected_publish(
    *, document_id: int, requester_id: int, rejected_by_id: int, step: int, comment: str
) -> Notification:
    document = Document.objects.get(pk=document_id)
    rejecter_name = _display_name(rejected_by_id)
    return notification_publish(
        event=DOCUMENT_REJECTED_EVENT,
        title="Document rejected",
        body=f"{rejecter_name} rejected your document “{document.title}”: {comment}",
        data={
            "documentId": document_id,
            "documentTitle": document.title,
            "rejectedBy": rejecter_name,
            "step": step,
            "comment": comment,
            "timestamp": timezone.now().isoformat(),
        },
        user_ids=[requester_id],
        document_id=document_id,
        priority=Notification.Priority.HIGH,
    )


def _display_name(user_id: int) -> str:
    user = User.objects.get(pk=user_id)
    return user.get_full_name() or user.get_username()
