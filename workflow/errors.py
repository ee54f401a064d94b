"""The one error type of the workflow domain, mapped once to HTTP and WebSocket errors."""


class WorkflowError(Exception):
    """A workflow transition that is not allowed; nothing was changed.

    `code` is stable and machine-readable; the message is for people.
    """

    def __init__(self, message: str, *, code: str = "invalid_transition") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
