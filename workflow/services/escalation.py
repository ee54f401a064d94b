"""Tasks nobody acts on: the approver is reminded once, then the department's escalation contact is told once.

A department says how long an open task may wait before its approver is reminded (`remind_after`) and before its
escalation contact hears of it (`escalate_after`); a document may override either (`document_escalation_set`).
Empty means never. Both are measured from when the task opened: a reassigned step's new task starts afresh.
Celery beat runs `overdue_tasks_escalate` every WORKFLOW_ESCALATION_INTERVAL seconds (workflow/tasks.py).

Once only: `reminded_at` / `escalated_at` are set in the transaction that sends `task_reminded` / `task_escalated`,
so the mark commits together with the notification the receiver writes, or neither does.

Race-safe with decisions: each task is handled under its document's row lock, the lock every transition takes.
It is taken with SKIP LOCKED: a document a transition holds is left to the next round, by which time its task is
closed (nothing is sent) or still due. A transition that comes while the lock is held here waits for it, then
closes the task, which resolves the reminder and the escalation with it (they share the task's subject). Two
rounds at once (two beats) cannot both handle a task: the second finds it locked, or already marked.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.durations import duration
from workflow import signals
from workflow.errors import WorkflowError
from workflow.models import SHORTEST_WAIT, Document, Task

logger = logging.getLogger(__name__)

# Tasks handled per stage in one round: a backlog (a department's times shortened) is worked off over a few
# rounds instead of one long run that holds the beat's queue.
ROUND_LIMIT = 200


class Stage(StrEnum):
    """What happens to a task that waited long enough, named after the duration field that says when."""

    REMINDER = "remind_after"
    ESCALATION = "escalate_after"

    @property
    def mark(self) -> str:
        """The task's field set when it happened."""
        return "reminded_at" if self is Stage.REMINDER else "escalated_at"


class Handled(StrEnum):
    """What one task's turn came to."""

    SENT = "sent"  # reminded, or escalated to the contact
    NOBODY = "nobody"  # escalation due, but the department has no contact (other than the approver): recorded only
    BUSY = "busy"  # a transition holds the document: left to the next round
    NOT_DUE = "not_due"  # closed, already handled, or no longer due by the time it was locked


@dataclass(frozen=True)
class EscalationRound:
    reminded: int = 0
    escalated: int = 0
    nobody_to_escalate_to: int = 0
    busy: int = 0  # left to the next round

    def as_dict(self) -> dict[str, int]:
        return {
            "reminded": self.reminded,
            "escalated": self.escalated,
            "nobody_to_escalate_to": self.nobody_to_escalate_to,
            "busy": self.busy,
        }


def waits_of(stage: Stage) -> Coalesce:
    """A task's wait before `stage`: its document's override, else its department's (NULL: never)."""
    return Coalesce(F(f"document__{stage}"), F(f"document__department__{stage}"))


def tasks_due(*, stage: Stage, now: datetime) -> QuerySet[Task]:
    """Open tasks of documents in review that have waited their `stage` time and not had it yet, oldest first."""
    due_at = ExpressionWrapper(F("created_at") + waits_of(stage), output_field=DateTimeField())
    return (
        Task.objects.filter(status=Task.Status.OPEN, document__status=Document.Status.IN_REVIEW)
        .filter(**{f"{stage.mark}__isnull": True})
        .annotate(due_at=due_at)
        .filter(due_at__lte=now)
        .order_by("created_at", "id")
    )


def overdue_tasks_escalate(*, now: datetime | None = None) -> EscalationRound:
    """One round: remind every task due a reminder, then escalate every task due an escalation.

    Not one transaction: each task is handled in its own (`task_remind`, `task_escalate`), so a document lock
    is held for one task's notification only, and one task's failure leaves the others done.
    """
    now = now or timezone.now()
    reminded = [task_remind(task_id=task_id, now=now) for task_id in _due_ids(Stage.REMINDER, now)]
    escalated = [task_escalate(task_id=task_id, now=now) for task_id in _due_ids(Stage.ESCALATION, now)]
    result = EscalationRound(
        reminded=reminded.count(Handled.SENT),
        escalated=escalated.count(Handled.SENT),
        nobody_to_escalate_to=escalated.count(Handled.NOBODY),
        busy=(reminded + escalated).count(Handled.BUSY),
    )
    if any(result.as_dict().values()):
        logger.info("escalation round: %s", ", ".join(f"{key} {value}" for key, value in result.as_dict().items()))
    return result


@transaction.atomic
def task_remind(*, task_id: int, now: datetime) -> Handled:
    """Remind the task's approver once, if the task is still open and due at `now`."""
    task = _lock_if_due(task_id=task_id, stage=Stage.REMINDER, now=now)
    if not isinstance(task, Task):
        return task
    Task.objects.filter(pk=task.pk).update(reminded_at=now)
    signals.task_reminded.send(
        sender=Task,
        task_id=task.pk,
        document_id=task.document_id,
        assignee_id=task.assignee_id,
        step=task.step.order,
        waited_seconds=_waited_seconds(task, now),
    )
    return Handled.SENT


@transaction.atomic
def task_escalate(*, task_id: int, now: datetime) -> Handled:
    """Tell the department's escalation contact once, if the task is still open and due at `now`.

    Without a contact (or when the contact is the approver, or inactive) the escalation is recorded with nobody
    as its recipient and logged: it is not tried again, and the document's timeline says so.
    """
    task = _lock_if_due(task_id=task_id, stage=Stage.ESCALATION, now=now)
    if not isinstance(task, Task):
        return task
    department = task.document.department
    contact = department.escalation_contact
    if contact is None or not contact.is_active or contact.pk == task.assignee_id:
        Task.objects.filter(pk=task.pk).update(escalated_at=now, escalated_to=None)
        logger.warning(
            "task %s of document %s waited %s s: department %s has no escalation contact to tell",
            task.pk,
            task.document_id,
            _waited_seconds(task, now),
            department.code,
        )
        return Handled.NOBODY
    Task.objects.filter(pk=task.pk).update(escalated_at=now, escalated_to=contact)
    signals.task_escalated.send(
        sender=Task,
        task_id=task.pk,
        document_id=task.document_id,
        assignee_id=task.assignee_id,
        contact_id=contact.pk,
        step=task.step.order,
        waited_seconds=_waited_seconds(task, now),
    )
    return Handled.SENT


@transaction.atomic
def document_escalation_set(
    *, document: Document, remind_after: timedelta | None, escalate_after: timedelta | None
) -> Document:
    """Override the department's reminder and escalation times for one document (None: the department's)."""
    document = Document.objects.select_for_update().select_related("department").get(pk=document.pk)
    for field, wait in (("remind_after", remind_after), ("escalate_after", escalate_after)):
        if wait is not None and wait < SHORTEST_WAIT:
            raise WorkflowError(f"Wait at least {SHORTEST_WAIT.total_seconds():.0f} s.", code="invalid", field=field)
    remind = remind_after if remind_after is not None else document.department.remind_after
    escalate = escalate_after if escalate_after is not None else document.department.escalate_after
    if remind is not None and escalate is not None and remind >= escalate:
        raise WorkflowError(
            f"The reminder (after {duration(remind)}) must come before the escalation (after {duration(escalate)}).",
            code="invalid",
            field="remind_after",
        )
    document.remind_after, document.escalate_after = remind_after, escalate_after
    document.save(update_fields=["remind_after", "escalate_after", "updated_at"])
    return document


def _due_ids(stage: Stage, now: datetime) -> list[int]:
    return list(tasks_due(stage=stage, now=now).values_list("pk", flat=True)[:ROUND_LIMIT])


def _lock_if_due(*, task_id: int, stage: Stage, now: datetime) -> Task | Handled:
    """The task, its document locked, if it is still due for `stage`; else why not."""
    document_id = Task.objects.filter(pk=task_id).values_list("document_id", flat=True).first()
    if document_id is None:
        return Handled.NOT_DUE
    locked = Document.objects.select_for_update(skip_locked=True).filter(pk=document_id).values_list("pk", flat=True)
    if not list(locked):
        return Handled.BUSY
    # Read again under the lock: a transition that committed meanwhile closed it, or another round marked it.
    task = (
        tasks_due(stage=stage, now=now)
        .select_related("step", "document__department__escalation_contact")
        .filter(pk=task_id)
        .first()
    )
    return task if task is not None else Handled.NOT_DUE


def _waited_seconds(task: Task, now: datetime) -> int:
    return max(0, round((now - task.created_at).total_seconds()))
