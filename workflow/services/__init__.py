"""Every change to a document's workflow goes through these functions.

One module per kind of change: `documents` (create, submit, decide, reassign, withdraw), `delegation` (out of
office: create, check, cancel). Callers import from this package (`from workflow import services`), never from
its modules, so a module can move without touching them.
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

__all__ = [
    "MAX_TITLE_LENGTH",
    "TaskCloseReason",
    "delegation_cancel",
    "delegation_check",
    "delegation_create",
    "document_create",
    "document_reject",
    "document_submit",
    "document_withdraw",
    "step_approve",
    "step_reassign",
]
