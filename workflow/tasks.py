"""Celery tasks of the workflow domain: thin wrappers that call one service (idempotent, as every task here)."""

from celery import shared_task

from workflow.services import overdue_tasks_escalate

ESCALATION_TASK = "workflow.escalate_overdue_tasks"


@shared_task(name=ESCALATION_TASK, ignore_result=True)
def escalate_overdue_tasks() -> dict[str, int]:
    """Remind and escalate the tasks that waited too long (Celery beat, every WORKFLOW_ESCALATION_INTERVAL s)."""
    return overdue_tasks_escalate().as_dict()
