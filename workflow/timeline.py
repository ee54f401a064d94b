"""One document's story in time order, in words: what the admin's document page shows as a timeline.

Built from the document, its approval steps and their tasks (with their reminders and escalations). What the rows
cannot tell: who submitted it (the services allow only the requester, so it says the requester), a reassignment's
author (a reassigned step's old task shows as cancelled, the new one as opened), and anything about notifications:
workflow does not know them (the admin's page adds them through the `notifications` related name, without an
import).
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from core.durations import duration
from workflow.models import ApprovalStep, Delegation, Document, Task


def person_name(user) -> str:
    """'Ada Lovelace (ada)', or 'ada' without a name (as notifications.models.person_name)."""
    full_name = user.get_full_name()
    return f"{full_name} ({user.get_username()})" if full_name else user.get_username()


def at_second(moment: datetime) -> str:
    """As notifications.console.times.at_second (workflow does not import notifications)."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


@dataclass(frozen=True)
class Entry:
    """One thing that happened to a document: when (None: not yet), what in words, and the detail."""

    at: datetime | None
    what: str
    detail: str = ""
    kind: str = "info"  # how the page marks it: info, success, failure, waiting
    url: str = ""
    link_text: str = ""

    @property
    def at_text(self) -> str:
        return at_second(self.at) if self.at is not None else "not yet"


_TASK_CLOSED: dict[str, str] = {
    Task.Status.DONE: "closed: done",
    Task.Status.CANCELLED: "cancelled (the step was reassigned)",
}


def document_timeline(document: Document) -> list[Entry]:
    """Created, submitted, every task opened and closed, every step's decision, oldest first; then the steps
    still waiting, in order, without a time. Four queries, whatever the number of steps and tasks."""
    document = Document.objects.select_related("requester", "department__escalation_contact").get(pk=document.pk)
    steps = list(document.steps.select_related("approver", "decided_by", "decided_on_behalf_of").order_by("order"))
    tasks = list(
        document.tasks.select_related("assignee", "on_behalf_of", "step", "escalated_to").order_by("created_at", "id")
    )
    delegations = _delegations_of(tasks)
    entries = [
        Entry(
            document.created_at,
            f"Created by {person_name(document.requester)}",
            f"“{document.title}”, department {document.department.code}",
        )
    ]
    if document.submitted_at is not None:
        entries.append(Entry(document.submitted_at, f"Submitted for approval by {person_name(document.requester)}"))
    for task in tasks:
        entries.append(
            Entry(
                task.created_at,
                f"Task opened for step {task.step.order}: {person_name(task.assignee)}{_behalf(task, delegations)}",
            )
        )
        entries.extend(_follow_ups(task, document))
        if task.closed_at is not None:
            closed = _TASK_CLOSED.get(task.status, task.get_status_display())
            if task.status == Task.Status.CANCELLED and task.step.status == ApprovalStep.Status.CANCELLED:
                closed = "cancelled (the document was withdrawn)"  # a reassigned step stays open, not cancelled
            entries.append(
                Entry(task.closed_at, f"Task of step {task.step.order} {closed}", person_name(task.assignee))
            )
    for step in steps:
        if step.decided_at is not None:
            entries.append(_decision(step))
    if document.decided_at is not None:
        approved = document.status == Document.Status.APPROVED
        outcome = "Approved: every step approved" if approved else "Rejected"
        entries.append(Entry(document.decided_at, f"Document {outcome}", "", "success" if approved else "failure"))
    if document.status == Document.Status.WITHDRAWN:
        # Nothing changes a withdrawn document afterwards: its last update is the withdrawal.
        entries.append(
            Entry(document.updated_at, f"Document withdrawn by {person_name(document.requester)}", "", "failure")
        )
    timed = sorted(entries, key=lambda entry: entry.at)  # type: ignore[arg-type, return-value]  # all timed
    waiting = [
        Entry(
            None,
            f"Step {step.order}: {step.get_status_display().lower()}",
            f"Approver: {person_name(step.approver)}",
            "waiting",
        )
        for step in steps
        if step.decided_at is None and step.status != ApprovalStep.Status.CANCELLED  # withdrawn: nothing to wait for
    ]
    return timed + waiting


def _delegations_of(tasks: list[Task]) -> list[Delegation]:
    """The delegations of the approvers some task went away from (out of office), to say until when."""
    absent_ids = {task.on_behalf_of_id for task in tasks if task.on_behalf_of_id is not None}
    return list(Delegation.objects.filter(delegator_id__in=absent_ids)) if absent_ids else []


def _behalf(task: Task, delegations: list[Delegation]) -> str:
    """' on behalf of Bob (bob) (out of office until ...)' for a delegate's task, else ''."""
    if task.on_behalf_of is None:
        return ""
    applied = [
        delegation
        for delegation in delegations
        if delegation.delegator_id == task.on_behalf_of_id
        and delegation.starts_at <= task.created_at < delegation.ended_at
    ]
    until = f" (out of office until {timezone.localtime(applied[0].ends_at):%Y-%m-%d %H:%M})" if applied else ""
    return f" on behalf of {person_name(task.on_behalf_of)}{until}"


def follow_up_rule(document: Document) -> str:
    """When the document's open tasks are reminded and escalated, whose setting that is, and to whom, in words."""
    department = document.department
    parts = []
    for label, field in (("reminder", "remind_after"), ("escalation", "escalate_after")):
        own, inherited = getattr(document, field), getattr(department, field)
        if own is not None:
            parts.append(f"{label} after {duration(own)} (this document's time)")
        elif inherited is not None:
            parts.append(f"{label} after {duration(inherited)} (department {department.code})")
        else:
            parts.append(f"no {label}")
    contact = department.escalation_contact
    escalates_to = f"to {person_name(contact)}" if contact is not None else "to nobody: the department has no contact"
    return f"Open tasks: {parts[0]}; {parts[1]}, {escalates_to}."


def _follow_ups(task: Task, document: Document) -> list[Entry]:
    """The task's reminder and escalation (workflow/services/escalation.py), if it had them."""
    entries = []
    if task.reminded_at is not None:
        waited = duration(task.reminded_at - task.created_at)
        entries.append(
            Entry(
                task.reminded_at,
                f"Reminded {person_name(task.assignee)}: the task of step {task.step.order} waited {waited}",
                "A TaskReminder, at normal priority",
                "warning",
            )
        )
    if task.escalated_at is not None:
        waited = duration(task.escalated_at - task.created_at)
        if task.escalated_to is not None:
            what = f"Escalated to {person_name(task.escalated_to)}: the task of step {task.step.order} waited {waited}"
            detail = f"A TaskEscalated about {person_name(task.assignee)}, the department's escalation contact"
        else:
            what = f"Not escalated: the task of step {task.step.order} waited {waited}, and nobody to tell"
            detail = f"Department {document.department.code} has no escalation contact (other than the approver)"
        entries.append(Entry(task.escalated_at, what, detail, "failure" if task.escalated_to is None else "warning"))
    return entries


def _decision(step: ApprovalStep) -> Entry:
    approved = step.status == ApprovalStep.Status.APPROVED
    decider = person_name(step.decided_by) if step.decided_by else "someone"
    if step.decided_on_behalf_of is not None:
        decider += f" on behalf of {person_name(step.decided_on_behalf_of)}"
    verb = "approved" if approved else "rejected"
    detail = f"Approver: {person_name(step.approver)}"
    if step.comment:
        detail += f". Comment: “{step.comment}”"
    assert step.decided_at is not None
    return Entry(
        step.decided_at, f"Step {step.order} {verb} by {decider}", detail, "success" if approved else "failure"
    )
