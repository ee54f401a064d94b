"""Actions: what a recipient may do from the notification itself, on any client (API, both sockets, a push).

A notification carries its `actions` (a list of `{"id", "label", "requires_comment"}`), set when it is
published: the workflow's `NewTask` offers approve and reject (reject needs a comment), and an API publisher
with an action callback (models.ActionCallback) may declare its own. Performing one
(`notification_action_perform`) is the recipient's decision, recorded once (`ActionPerformance`, one per
notification and recipient), so a second device or a retry replays the first answer instead of deciding again:

- `NewTask`: the workflow service runs as the recipient (`step_approve` / `document_reject`), with its own
  permission checks and errors (WorkflowError: the same codes as /api/documents/). The decision closes the task,
  which resolves the notification on every device through the usual task_closed → resolution path.
- A publisher's action: recorded, and its publisher called back after the commit with a signed POST
  (services/action_callbacks.py, a Celery task that retries).

Either way the recipient's delivery is read (unless the decision resolved it already). Every refusal changes
nothing: 404 for a notification that is not the caller's, 400 for an unknown action or a missing comment,
409 for a second, different action or one on a notification whose work is over.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from notifications import dispatch, selectors
from notifications.errors import NotificationError
from notifications.layer_messages import NotificationAction
from notifications.models import ActionCallback, ActionPerformance, Delivery, Notification
from notifications.reserved import NEW_TASK_EVENT, TASK_REMINDER_EVENT
from notifications.services.action_callbacks import callback_lease
from notifications.services.deliveries import delivery_mark_read, delivery_not_found
from workflow import services as workflow
from workflow.models import Document

# What a publisher may declare (the publish API checks these; tests/notifications/api/test_actions.py).
ACTION_ID_PATTERN = r"^[a-z][a-z0-9_-]{0,31}\Z"
MAX_ACTIONS = 3
MAX_ACTION_LABEL_LENGTH = 40
MAX_ACTION_COMMENT_LENGTH = 2_000

APPROVE = "approve"
REJECT = "reject"


NEW_TASK_ACTIONS: list[NotificationAction] = [
    {"id": APPROVE, "label": "Approve", "requires_comment": False},
    {"id": REJECT, "label": "Reject", "requires_comment": True},
]

# The workflow's notifications whose actions decide their task as the recipient (who holds it).
WORKFLOW_TASK_EVENTS = (NEW_TASK_EVENT, TASK_REMINDER_EVENT)

Outcome = ActionPerformance.Outcome


class ActionRefused(NotificationError):
    """An action that cannot be performed as asked; `field` names the input at fault (`action`, `comment`)."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field

    def fields(self) -> dict[str, list[str]] | None:
        return {self.field: [self.message]} if self.field else None


@dataclass(frozen=True)
class ActionResult:
    notification_id: str
    action: str
    outcome: str  # an ActionPerformance.Outcome
    performed_at: datetime
    already_performed: bool  # True: this repeats an earlier performance, whose answer this is


def actions_declared_check(*, publisher_id: int, actions: list[NotificationAction]) -> None:
    """A publisher may declare actions only with a callback to hear about them (else 400, field `actions`)."""
    if actions and not ActionCallback.objects.filter(publisher_id=publisher_id).exists():
        raise ActionRefused(
            "Register an action callback first (admin › Notifications › Action callbacks): "
            "without one, nobody would hear that an action was performed.",
            field="actions",
        )


@transaction.atomic
def notification_action_perform(
    *, notification_id: uuid.UUID | str, user: AbstractBaseUser, action: str, comment: str = ""
) -> ActionResult:
    """Perform `action` of the notification as `user`, one of its recipients; idempotent (see the module doc)."""
    parsed = selectors.parse_notification_id(notification_id)
    if parsed is None:
        raise delivery_not_found(notification_id)
    notification = Notification.objects.filter(pk=parsed, deliveries__recipient_id=user.pk).first()
    if notification is None:
        raise delivery_not_found(notification_id)
    definition = next((offered for offered in notification.actions if offered["id"] == action), None)
    if definition is None:
        offered = ", ".join(offered["id"] for offered in notification.actions) or "none"
        raise ActionRefused(f"No action {action[:64]!r} on this notification (it offers: {offered}).", field="action")
    comment = (comment or "").strip()
    if len(comment) > MAX_ACTION_COMMENT_LENGTH:
        raise ActionRefused(f"At most {MAX_ACTION_COMMENT_LENGTH} characters.", field="comment")

    is_workflow_task = _is_workflow_task(notification)
    # The document before the delivery, in the order a workflow decision takes them (document, then its
    # notifications' deliveries through the resolution): the other order could deadlock with one.
    document = _locked_document(notification) if is_workflow_task else None
    Delivery.objects.select_for_update().filter(notification=notification, recipient_id=user.pk).get()
    # Under the locks: a second device waits here for the first, then finds its performance.
    earlier = ActionPerformance.objects.filter(notification=notification, user_id=user.pk).first()
    if earlier is not None:
        return _repeated(earlier, action=action)
    if definition.get("requires_comment") and not comment:
        raise ActionRefused(f"'{action}' needs a comment saying why.", field="comment")
    notification.refresh_from_db(fields=["resolved_at", "resolution"])
    if notification.resolved_at is not None:
        raise NotificationError(
            f"Too late for '{action}': {notification.get_resolution_display().lower()}. Nothing was changed.",
            code="invalid_transition",
        )

    if document is not None:
        outcome = _decide(document=document, user=user, action=action, comment=comment)
        callback_status = ActionPerformance.CallbackStatus.NONE
    else:
        outcome, callback_status = Outcome.RECORDED, ActionPerformance.CallbackStatus.PENDING
    performance = ActionPerformance.objects.create(
        notification=notification,
        user_id=user.pk,
        action=action,
        comment=comment,
        outcome=outcome,
        callback_status=callback_status,
        # If the call queued after the commit is lost, the resume sweep queues it again from then on.
        callback_due_at=timezone.now() + callback_lease() if callback_status else None,
    )
    if callback_status == ActionPerformance.CallbackStatus.PENDING:
        dispatch.action_callback_enqueue_on_commit(performance_id=performance.pk)
    delivery_mark_read(user_id=user.pk, notification_id=notification.pk)  # a resolved one stays resolved
    return ActionResult(
        notification_id=str(notification.pk),
        action=action,
        outcome=outcome,
        performed_at=performance.performed_at,
        already_performed=False,
    )


def _is_workflow_task(notification: Notification) -> bool:
    """The workflow's own NewTask or its reminder (published by nobody: an API publisher cannot use the names)."""
    return notification.event in WORKFLOW_TASK_EVENTS and notification.published_by_id is None


def _locked_document(notification: Notification) -> Document:
    if notification.document_id is None:  # the workflow always attaches it; SET_NULL if it was deleted
        raise NotificationError("The document of this task is gone.", code="invalid_transition")
    return Document.objects.select_for_update().get(pk=notification.document_id)


def _decide(*, document: Document, user: AbstractBaseUser, action: str, comment: str) -> str:
    """The workflow decision, as the user (WorkflowError as /api/documents/ answers it)."""
    if action == APPROVE:
        workflow.step_approve(document=document, approver=user, comment=comment)  # type: ignore[arg-type]
        return Outcome.APPROVED
    workflow.document_reject(document=document, approver=user, comment=comment)  # type: ignore[arg-type]
    return Outcome.REJECTED


def _repeated(earlier: ActionPerformance, *, action: str) -> ActionResult:
    if earlier.action != action:
        raise NotificationError(
            f"You already performed '{earlier.action}' on this notification ({earlier.get_outcome_display().lower()}); "
            f"it cannot also be '{action}'.",
            code="already_performed",
        )
    return ActionResult(
        notification_id=str(earlier.notification_id),
        action=earlier.action,
        outcome=earlier.outcome,
        performed_at=earlier.performed_at,
        already_performed=True,
    )
