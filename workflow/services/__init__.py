"""Every change to a document's workflow goes through these functions.

One module per kind of change: `documents` (create, submit, decide, reassign, withdraw), `delegation` (out of
office: create, check, cancel), `escalation` (reminders and escalations of tasks nobody acts on). Callers import
from this package (`from workflow import services`), never from its modules, so a module can move without
touching them.
"""

from workflow.services.delegation import delegation_cancel, delegation_check, delegation_create
from workflow.services.documents import (
    MAX_TITLE_LENGTH,
    TaskCloseReason,
    document_create,
    document_reject,
    document_submit,
    document_withdraw,
    step_approve,
    step_reassign,
)
from workflow.services.escalation import (
    EscalationRound,
    Handled,
    Stage,
    document_escalation_set,
    overdue_tasks_escalate,
    task_escalate,
    task_remind,
    tasks_due,
)

__all__ = [
    "MAX_TITLE_LENGTH",
    "EscalationRound",
    "Handled",
    "Stage",
    "TaskCloseReason",
    "delegation_cancel",
    "delegation_check",
    "delegation_create",
    "document_create",
    "document_escalation_set",
    "document_reject",
    "document_submit",
    "document_withdraw",
    "overdue_tasks_escalate",
    "step_approve",
    "step_reassign",
    "task_escalate",
    "task_remind",
    "tasks_due",
]
