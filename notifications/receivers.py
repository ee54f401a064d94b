"""Turns workflow signals into notifications: each receiver calls one service.

Connected once in `NotificationsConfig.ready()`. The signals arrive inside the
workflow transaction, so the notification commits or rolls back with it.
"""

from notifications import services
from workflow import signals


def on_task_assigned(sender, *, task_id, document_id, assignee_id, step, requester_id, **kwargs) -> None:
    services.new_task_publish(
        task_id=task_id, document_id=document_id, assignee_id=assignee_id, step=step, requester_id=requester_id
    )


def on_step_approved(sender, *, document_id, requester_id, approver_id, step, is_final_step, comment, **kwargs) -> None:
    services.document_approved_publish(
        document_id=document_id,
        requester_id=requester_id,
        approver_id=approver_id,
        step=step,
        is_final_step=is_final_step,
        comment=comment,
    )


def on_document_rejected(sender, *, document_id, requester_id, rejected_by_id, step, comment, **kwargs) -> None:
    services.document_rejected_publish(
        document_id=document_id, requester_id=requester_id, rejected_by_id=rejected_by_id, step=step, comment=comment
    )


def connect() -> None:
    signals.task_assigned.connect(on_task_assigned, dispatch_uid="notifications.task_assigned")
    signals.step_approved.connect(on_step_approved, dispatch_uid="notifications.step_approved")
    signals.document_rejected.connect(on_document_rejected, dispatch_uid="notifications.document_rejected")
