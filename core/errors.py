"""The base of every domain's error: what an app refuses, said once, mapped once to HTTP (core/api/errors.py)
and to WebSocket error frames (the hub)."""


class DomainError(Exception):
    """A request a domain refuses; nothing was changed.

    `code` is stable and machine-readable; `message` is for people; `fields()` names the input at fault
    (a dotted field path to its messages), if it was the input.
    """

    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def fields(self) -> dict[str, list[str]] | None:
        return None
