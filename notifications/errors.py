"""The one error type of the notifications domain, mapped once to HTTP and WebSocket errors."""

from collections.abc import Iterable

from core.errors import DomainError


class NotificationError(DomainError):
    """A request the notifications domain refuses; nothing was changed."""


class UnknownRecipients(NotificationError):
    """Some targeted users or departments do not exist."""

    def __init__(self, *, user_ids: Iterable[int | str] = (), department_ids: Iterable[int | str] = ()) -> None:
        self.user_ids = list(user_ids)
        self.department_ids = list(department_ids)
        parts = []
        if self.user_ids:
            parts.append(f"users {', '.join(map(str, self.user_ids))}")
        if self.department_ids:
            parts.append(f"departments {', '.join(map(str, self.department_ids))}")
        super().__init__(f"Unknown recipients: {'; '.join(parts)}.", code="unknown_recipients")

    def fields(self) -> dict[str, list[str]]:
        fields = {}
        if self.user_ids:
            fields["recipients.users"] = [f"No such user: {reference}." for reference in self.user_ids]
        if self.department_ids:
            fields["recipients.departments"] = [
                f"No such department: {reference}." for reference in self.department_ids
            ]
        return fields


class OutsideScope(NotificationError):
    """A publish reaches beyond the publisher's scope (recipients, event name, document), uses a name reserved
    for the system, or the publisher has no scope at all. `fields` names what, by input field."""

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, code="outside_scope")
        self._fields = fields

    def fields(self) -> dict[str, list[str]] | None:
        return self._fields


class ReservedDataKeys(NotificationError):
    """A publisher's `data` sets keys the hub's messages set themselves."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        names = ", ".join(keys)
        super().__init__(f"data may not set {names}: the hub sets these keys itself.", code="invalid")

    def fields(self) -> dict[str, list[str]]:
        return {"data": [f"Reserved keys: {', '.join(self.keys)}. The hub sets these itself; use other names."]}
