"""Turns workflow signals into notifications (a closed task resolves its own, its reminder and escalation
included), and a user's deactivation into closed deliveries: each receiver calls one service.

Connected once in `NotificationsConfig.ready()`. The signals arrive inside the
workflow transaction, so the notification commits or rolls back with it.

The user model is Django's, saved by the admin, management commands and
directory syncs alike: its `pre_save`/`post_save` are the one place every
deactivation passes (our habit of custom signals cannot reach there). A bulk
`update(is_active=False)` sends no signal: call `services.recipient_deactivated`
for each user then (a push is refused for an inactive recipient anyway).
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from notifications import services
from workflow import signals


def on_task_assigned(
    sender,
    *,
    task_id,
    document_id,
    assignee_id,
    step,
    requester_id,
    on_behalf_of_id=None,
    delegated_until=None,
    **kwargs,
) -> None:
    """The assignee's NewTask; when it went to a delegate, also an in-app note to the approver who is away."""
    services.new_task_publish(
        task_id=task_id,
        document_id=document_id,
        assignee_id=assignee_id,
        step=step,
        requester_id=requester_id,
        on_behalf_of_id=on_behalf_of_id,
    )
    if on_behalf_of_id is not None:
        services.task_delegated_publish(
            task_id=task_id,
            document_id=document_id,
            delegate_id=assignee_id,
            approver_id=on_behalf_of_id,
            step=step,
            delegated_until=delegated_until,
        )


def on_step_approved(
    sender, *, document_id, requester_id, approver_id, step, is_final_step, comment, on_behalf_of_id=None, **kwargs
) -> None:
    services.document_approved_publish(
        document_id=document_id,
        requester_id=requester_id,
        approver_id=approver_id,
        step=step,
        is_final_step=is_final_step,
        comment=comment,
        on_behalf_of_id=on_behalf_of_id,
    )


def on_document_rejected(
    sender, *, document_id, requester_id, rejected_by_id, step, comment, on_behalf_of_id=None, **kwargs
) -> None:
    services.document_rejected_publish(
        document_id=document_id,
        requester_id=requester_id,
        rejected_by_id=rejected_by_id,
        step=step,
        comment=comment,
        on_behalf_of_id=on_behalf_of_id,
    )


def on_task_reminded(sender, *, task_id, document_id, assignee_id, step, waited_seconds, **kwargs) -> None:
    services.task_reminder_publish(
        task_id=task_id, document_id=document_id, assignee_id=assignee_id, step=step, waited_seconds=waited_seconds
    )


def on_task_escalated(sender, *, task_id, document_id, assignee_id, contact_id, step, waited_seconds, **kwargs) -> None:
    services.task_escalation_publish(
        task_id=task_id,
        document_id=document_id,
        assignee_id=assignee_id,
        contact_id=contact_id,
        step=step,
        waited_seconds=waited_seconds,
    )


def on_task_closed(sender, *, task_id, document_id, assignee_id, outcome, reason, **kwargs) -> None:
    services.task_notifications_resolve(task_id=task_id, reason=reason)


def remember_whether_active(sender, *, instance, update_fields=None, **kwargs) -> None:
    """Before a user is saved: was it active until now? (Not asked when the save cannot change it.)"""
    if instance.pk is None or (update_fields is not None and "is_active" not in update_fields):
        instance._was_active = None
        return
    instance._was_active = sender.objects.filter(pk=instance.pk, is_active=True).exists()


def on_user_saved(sender, *, instance, **kwargs) -> None:
    if getattr(instance, "_was_active", None) and not instance.is_active:
        services.recipient_deactivated(user_id=instance.pk)


def connect() -> None:
    User = get_user_model()
    pre_save.connect(remember_whether_active, sender=User, dispatch_uid="notifications.user_was_active")
    post_save.connect(on_user_saved, sender=User, dispatch_uid="notifications.user_saved")
    signals.task_assigned.connect(on_task_assigned, dispatch_uid="notifications.task_assigned")
    signals.step_approved.connect(on_step_approved, dispatch_uid="notifications.step_approved")
    signals.document_rejected.connect(on_document_rejected, dispatch_uid="notifications.document_rejected")
    signals.task_closed.connect(on_task_closed, dispatch_uid="notifications.task_closed")
    signals.task_reminded.connect(on_task_reminded, dispatch_uid="notifications.task_reminded")
    signals.task_escalated.connect(on_task_escalated, dispatch_uid="notifications.task_escalated")
