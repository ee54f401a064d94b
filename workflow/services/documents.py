"""Every change to a document's workflow goes through these functions.

Each one locks the document row, checks the transition, writes, and sends its
signal from `workflow.signals` inside the same transaction, so whatever the
receivers write (notifications) commits or rolls back with the change.
A transition that is not allowed raises `WorkflowError` and changes nothing.
"""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import cast

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from workflow import signals
from workflow.errors import WorkflowError
from workflow.models import ApprovalStep, Department, Document, Task
from workflow.services.delegation import task_assignment

MAX_TITLE_LENGTH = cast(int, Document._meta.get_field("title").max_length)  # a CharField: it has one


class TaskCloseReason(StrEnum):
    """What closed a task (the `reason` of `signals.task_closed`)."""

    APPROVED = "approved"  # its assignee approved the step
    REJECTED = "rejected"  # its assignee rejected the document
    REASSIGNED = "reassigned"  # the step went to another approver
    WITHDRAWN = "withdrawn"  # the requester withdrew the document


@transaction.atomic
def document_create(
    *,
    requester: User,
    department: Department,
    title: str,
    approvers: Sequence[User],
    description: str = "",
) -> Document:
    """Create a draft document with one approval step per approver, in order."""
    title = (title or "").strip()
    if not title:
        raise WorkflowError("A document needs a title.", code="invalid", field="title")
    if len(title) > MAX_TITLE_LENGTH:
        raise WorkflowError(f"The title is longer than {MAX_TITLE_LENGTH} characters.", code="invalid", field="title")
    if not approvers:
        raise WorkflowError("A document needs at least one approver.", code="invalid", field="approvers")
    approver_ids = [approver.pk for approver in approvers]
    if len(set(approver_ids)) != len(approver_ids):
        raise WorkflowError(
            "An approver may appear only once in a document's chain.", code="invalid", field="approvers"
        )
    if requester.pk in approver_ids:
        raise WorkflowError("The requester cannot approve their own document.", code="self_approval", field="approvers")
    inactive = [approver.get_username() for approver in approvers if not approver.is_active]
    if inactive:
        raise WorkflowError(f"Inactive users cannot approve: {', '.join(inactive)}.", code="invalid", field="approvers")
    if not department.memberships.filter(user_id=requester.pk).exists():
        raise WorkflowError(
            f"{requester.get_username()} is not a member of department {department.code}.",
            code="not_a_member",
            field="department",
        )

    document = Document.objects.create(
        requester=requester, department=department, title=title, description=description or ""
    )
    ApprovalStep.objects.bulk_create(
        ApprovalStep(document=document, order=order, approver=approver)
        for order, approver in enumerate(approvers, start=1)
    )
    return document


@transaction.atomic
def document_submit(*, document: Document, submitted_by: User) -> Document:
    """Send a draft for approval: its first step opens a task for the first approver."""
    document = _lock(document)
    if submitted_by.pk != document.requester_id:
        raise WorkflowError("Only the requester can submit a document.", code="forbidden")
    if document.status != Document.Status.DRAFT:
        raise WorkflowError(
            f"Document #{document.pk} is {document.get_status_display().lower()}; only drafts can be submitted.",
        )
    first_step = document.steps.order_by("order").first()
    if first_step is None:
        raise WorkflowError("A document needs at least one approval step.", code="invalid")

    document.status = Document.Status.IN_REVIEW
    document.submitted_at = timezone.now()
    document.save(update_fields=["status", "submitted_at", "updated_at"])
    signals.document_submitted.send(sender=Document, document_id=document.pk, requester_id=document.requester_id)
    _open_step(first_step)
    return document


@transaction.atomic
def step_approve(*, document: Document, approver: User, comment: str = "") -> Document:
    """Approve the document's current step; the next step opens, or the document is approved."""
    document = _lock(document)
    step = _current_step(document, action="approved")
    on_behalf_of_id = _check_may_decide(step, approver)

    _decide(
        step,
        status=ApprovalStep.Status.APPROVED,
        by=approver,
        on_behalf_of_id=on_behalf_of_id,
        comment=comment,
        reason=TaskCloseReason.APPROVED,
    )
    next_step = document.steps.filter(order__gt=step.order).order_by("order").first()
    is_final_step = next_step is None
    if is_final_step:
        document.status = Document.Status.APPROVED
        document.decided_at = step.decided_at
        document.save(update_fields=["status", "decided_at", "updated_at"])
    signals.step_approved.send(
        sender=ApprovalStep,
        document_id=document.pk,
        requester_id=document.requester_id,
        approver_id=approver.pk,
        step=step.order,
        is_final_step=is_final_step,
        comment=step.comment,
        on_behalf_of_id=on_behalf_of_id,
    )
    if next_step is None:
        signals.document_approved.send(
            sender=Document,
            document_id=document.pk,
            requester_id=document.requester_id,
            approver_id=approver.pk,
            on_behalf_of_id=on_behalf_of_id,
        )
    else:
        _open_step(next_step)
    return document


@transaction.atomic
def document_reject(*, document: Document, approver: User, comment: str) -> Document:
    """Reject the document at its current step; the requester learns why from the comment."""
    document = _lock(document)
    step = _current_step(document, action="rejected")
    on_behalf_of_id = _check_may_decide(step, approver)
    if not (comment or "").strip():
        raise WorkflowError("A rejection needs a comment saying why.", code="invalid", field="comment")

    _decide(
        step,
        status=ApprovalStep.Status.REJECTED,
        by=approver,
        on_behalf_of_id=on_behalf_of_id,
        comment=comment.strip(),
        reason=TaskCloseReason.REJECTED,
    )
    document.status = Document.Status.REJECTED
    document.decided_at = step.decided_at
    document.save(update_fields=["status", "decided_at", "updated_at"])
    signals.document_rejected.send(
        sender=Document,
        document_id=document.pk,
        requester_id=document.requester_id,
        rejected_by_id=approver.pk,
        step=step.order,
        comment=step.comment,
        on_behalf_of_id=on_behalf_of_id,
    )
    return document


@transaction.atomic
def step_reassign(*, document: Document, reassigned_by: User, new_approver: User) -> ApprovalStep:
    """Hand the current step to another approver: the old task is cancelled, a new one opens."""
    document = _lock(document)
    step = _current_step(document, action="reassigned")
    if reassigned_by.pk != step.approver_id and not reassigned_by.is_staff:
        raise WorkflowError("Only the step's approver or staff can reassign it.", code="forbidden")
    if new_approver.pk == step.approver_id:
        raise WorkflowError(f"{new_approver.get_username()} already holds this step.", code="invalid")
    if new_approver.pk == document.requester_id:
        raise WorkflowError("The requester cannot approve their own document.", code="self_approval")
    if not new_approver.is_active:
        raise WorkflowError(f"Inactive users cannot approve: {new_approver.get_username()}.", code="invalid")

    _close_open_tasks(step, status=Task.Status.CANCELLED, reason=TaskCloseReason.REASSIGNED, now=timezone.now())
    step.approver = new_approver
    step.save(update_fields=["approver"])
    _open_step(step)
    return step


@transaction.atomic
def document_withdraw(*, document: Document, withdrawn_by: User) -> Document:
    """The requester takes back a document in review: it is withdrawn, its open task and undecided steps
    cancelled."""
    document = _lock(document)
    if withdrawn_by.pk != document.requester_id:
        raise WorkflowError("Only the requester can withdraw a document.", code="forbidden")
    if document.status != Document.Status.IN_REVIEW:
        raise WorkflowError(
            f"Document #{document.pk} is {document.get_status_display().lower()}; "
            "only documents in review can be withdrawn."
        )
    now = timezone.now()
    for step in document.steps.filter(status=ApprovalStep.Status.PENDING):
        _close_open_tasks(step, status=Task.Status.CANCELLED, reason=TaskCloseReason.WITHDRAWN, now=now)
    document.steps.filter(status__in=[ApprovalStep.Status.PENDING, ApprovalStep.Status.WAITING]).update(
        status=ApprovalStep.Status.CANCELLED
    )
    document.status = Document.Status.WITHDRAWN
    document.save(update_fields=["status", "updated_at"])
    signals.document_withdrawn.send(
        sender=Document, document_id=document.pk, requester_id=document.requester_id, withdrawn_by_id=withdrawn_by.pk
    )
    return document


def _lock(document: Document) -> Document:
    """Re-read the document under a row lock: transitions on one document run one at a time."""
    return Document.objects.select_for_update().select_related("requester").get(pk=document.pk)


def _current_step(document: Document, *, action: str) -> ApprovalStep:
    if document.status != Document.Status.IN_REVIEW:
        raise WorkflowError(
            f"Document #{document.pk} is {document.get_status_display().lower()}; "
            f"only documents in review can be {action}."
        )
    step = document.steps.filter(status=ApprovalStep.Status.PENDING).order_by("order").first()
    if step is None:  # only reachable through data edited by hand
        raise WorkflowError(f"Document #{document.pk} has no step awaiting a decision.")
    return step


def _check_may_decide(step: ApprovalStep, user: User) -> int | None:
    """The step's approver may decide, and so may the delegate holding its open task (out of office): then
    returns the approver's id, on whose behalf they decide. The approver keeps the right while away (they
    may be back early); their own decision closes the delegate's task."""
    if user.pk == step.approver_id:
        return None
    if Task.objects.filter(step=step, status=Task.Status.OPEN, assignee_id=user.pk).exists():
        return step.approver_id
    raise WorkflowError(f"Step {step.order} of document #{step.document_id} is not yours to decide.", code="forbidden")


def _decide(
    step: ApprovalStep, *, status: str, by: User, on_behalf_of_id: int | None, comment: str, reason: TaskCloseReason
) -> None:
    now = timezone.now()
    step.status = status
    step.decided_by = by
    step.decided_on_behalf_of_id = on_behalf_of_id
    step.decided_at = now
    step.comment = (comment or "").strip()
    step.save(update_fields=["status", "decided_by", "decided_on_behalf_of", "decided_at", "comment"])
    _close_open_tasks(step, status=Task.Status.DONE, reason=reason, now=now)


def _close_open_tasks(step: ApprovalStep, *, status: str, reason: TaskCloseReason, now: datetime) -> None:
    """Close the step's open task (one at most: `one_open_task_per_step`) and say so with `task_closed`.

    The caller holds the document's lock, so the task read here is the one closed.
    """
    open_tasks = list(Task.objects.filter(step=step, status=Task.Status.OPEN).values_list("pk", "assignee_id"))
    Task.objects.filter(pk__in=[task_id for task_id, _ in open_tasks]).update(status=status, closed_at=now)
    for task_id, assignee_id in open_tasks:
        signals.task_closed.send(
            sender=Task,
            task_id=task_id,
            document_id=step.document_id,
            assignee_id=assignee_id,
            outcome=status,
            reason=str(reason),
        )


def _open_step(step: ApprovalStep) -> Task:
    """Make `step` the one awaiting a decision and give its approver a task (or their delegate, while the
    approver is out of office: services/delegation.py)."""
    if step.status != ApprovalStep.Status.PENDING:
        step.status = ApprovalStep.Status.PENDING
        step.save(update_fields=["status"])
    requester_id = step.document.requester_id
    assignment = task_assignment(approver_id=step.approver_id, requester_id=requester_id, at=timezone.now())
    task = Task.objects.create(
        document_id=step.document_id,
        step=step,
        assignee_id=assignment.assignee_id,
        on_behalf_of_id=assignment.on_behalf_of_id,
    )
    delegation = assignment.delegation
    signals.task_assigned.send(
        sender=Task,
        task_id=task.pk,
        document_id=step.document_id,
        assignee_id=assignment.assignee_id,
        step=step.order,
        requester_id=requester_id,
        on_behalf_of_id=assignment.on_behalf_of_id,
        delegated_until=delegation.ends_at.isoformat() if delegation is not None else None,
    )
    return task
