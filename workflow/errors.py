"""The one error type of the workflow domain, mapped once to HTTP and WebSocket errors."""

from core.errors import DomainError


class WorkflowError(DomainError):
    """A workflow transition that is not allowed; nothing was changed.

    `field` names the input at fault when there is one (`approvers`, `department`, `comment`), so that the API
    answers with `fields` and a page shows the message beside that field.
    """

    default_code = "invalid_transition"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field

    def fields(self) -> dict[str, list[str]] | None:
        return {self.field: [self.message]} if self.field else None
