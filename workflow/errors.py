"""The one error type of the workflow domain, mapped once to HTTP and WebSocket errors."""

from core.errors import DomainError


class WorkflowError(DomainError):
    """A workflow transition that is not allowed; nothing was changed."""

    default_code = "invalid_transition"
