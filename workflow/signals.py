"""Signals the workflow services send, inside their transaction.

Receivers get ids and primitives only, never model instances, so a receiver
can run anywhere (including after the sender's objects went stale). They are
sent inside the workflow transaction on purpose: whatever a receiver writes
commits or rolls back together with the workflow change (transactional outbox).
Receivers must never leave the process directly; they schedule that with
`transaction.on_commit`.
"""

from django.dispatch import Signal

# document_id, requester_id
document_submitted = Signal()

# task_id, document_id, assignee_id, step, requester_id, on_behalf_of_id, delegated_until.
# on_behalf_of_id: the step's approver when the task went to their delegate (out of office), else None;
# delegated_until: then the end of the approver's delegation (ISO 8601), else None.
task_assigned = Signal()

# document_id, requester_id, approver_id (who decided), step, is_final_step, comment, on_behalf_of_id
# (the step's approver when a delegate decided for them, else None; the same in the two signals below)
step_approved = Signal()

# document_id, requester_id, approver_id, on_behalf_of_id
document_approved = Signal()

# document_id, requester_id, rejected_by_id, step, comment, on_behalf_of_id
document_rejected = Signal()

# task_id, document_id, assignee_id, outcome ("done": decided by its assignee; "cancelled"), reason
# (`TaskCloseReason`: what closed it). Sent wherever an open task closes.
task_closed = Signal()

# document_id, requester_id, withdrawn_by_id
document_withdrawn = Signal()

# task_id, document_id, assignee_id, step, waited_seconds (since the task opened). Sent once per task, when it
# has waited its reminder time without a decision (services/escalation.py).
task_reminded = Signal()

# task_id, document_id, assignee_id, contact_id (the department's escalation contact), step, waited_seconds.
# Sent once per task, when it has waited its escalation time; not sent when there was nobody to escalate to.
task_escalated = Signal()
