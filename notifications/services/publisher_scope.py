"""What an API publisher may publish: its scope (notifications.models.PublisherScope) and the reserved names.

Checked on every API publish (services/publish_request.py), after the recipients are resolved and before
anything is written. The workflow's own notifications never come here: they are the system.
"""

import functools
from collections.abc import Collection
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection

from notifications.errors import OutsideScope, ReservedDataKeys
from notifications.models import EVENT_PREFIX_WILDCARD, PublisherScope
from notifications.reserved import is_reserved_event, reserved_keys_in
from notifications.sql import Columns
from workflow.models import Department, DepartmentMembership, Document

# At most this many of each kind are named in the message (`fields` names them all).
NAMED_IN_MESSAGE = 10

NO_SCOPE_MESSAGE = (
    "You have no publishing scope, so you may publish nothing: an admin must give you one "
    "(admin › Notifications › Publisher scopes)."
)


def publish_data_check(data: dict | None) -> None:
    """Raises `ReservedDataKeys` if data sets a key the hub's SignalR argument sets itself (`notificationId`, ...)."""
    reserved = reserved_keys_in(data or {})
    if reserved:
        raise ReservedDataKeys(reserved)


def publisher_scope_check(
    *,
    publisher_id: int,
    event: str,
    user_ids: Collection[int],
    department_ids: Collection[int],
    document_id: int | None,
) -> None:
    """Raises `OutsideScope` naming every part of the publish beyond the publisher's scope; returns if none is.

    One query, whatever the number of recipients: a user is within scope if the scope names them or one of its
    departments has them as a member. Superusers are unrestricted; reserved event names are refused to all.
    """
    reserved_event_check(event)
    scope = _scope_reach(
        publisher_id=publisher_id, user_ids=user_ids, department_ids=department_ids, document_id=document_id
    )
    scope_reach_check(scope, event=event, document_id=document_id)


def reserved_event_check(event: str) -> None:
    """Raises `OutsideScope` for an event name reserved for the system: no publisher may use it."""
    if is_reserved_event(event):
        message = f"The event name '{event}' is reserved for the system: no publisher may use it."
        raise OutsideScope(message, fields={"event": [message]})


def scope_reach_check(scope: "ScopeReach", *, event: str, document_id: int | None) -> None:
    """Raises `OutsideScope` naming every part of the publish beyond `scope` (read by `_scope_reach` or the
    publish plan, services/publish_plan.py)."""
    if scope.unrestricted:
        return
    if not scope.exists:
        raise OutsideScope(NO_SCOPE_MESSAGE)
    outside: list[str] = []  # what the message names, e.g. "users 17 (carol), 18 (dan)"
    fields: dict[str, list[str]] = {}
    if not event_allowed(scope.events, event):
        outside.append(f"event '{event}'")
        fields["event"] = [f"The event name '{event}' is outside your publishing scope."]
    if scope.users_outside:
        usernames = _names(get_user_model(), get_user_model().USERNAME_FIELD, scope.users_outside)
        named = [f"{user_id} ({usernames.get(user_id, '?')})" for user_id in scope.users_outside]
        outside.append(_listed("user", named))
        fields["recipients.users"] = [f"User {name} is outside your publishing scope." for name in named]
    if scope.departments_outside:
        codes = _names(Department, "code", scope.departments_outside)
        named = [f"'{codes.get(department_id, department_id)}'" for department_id in scope.departments_outside]
        outside.append(_listed("department", named))
        fields["recipients.departments"] = [f"Department {name} is outside your publishing scope." for name in named]
    if document_id is not None and not scope.document_allowed:
        outside.append(f"document {document_id}")
        fields["document_id"] = [
            f"Document {document_id} is outside your publishing scope."
            if scope.may_attach_documents
            else "Your publishing scope does not allow attaching documents."
        ]
    if outside:
        one_thing = len(fields) == 1 and len(next(iter(fields.values()))) == 1
        message = f"{_joined(outside)} {'is' if one_thing else 'are'} outside your publishing scope."
        raise OutsideScope(message, fields=fields)


def event_allowed(patterns: Collection[str], event: str) -> bool:
    """Whether an event name matches one of a scope's patterns: exactly, or by the prefix before a final `*`."""
    return any(
        event.startswith(pattern.removesuffix(EVENT_PREFIX_WILDCARD))
        if pattern.endswith(EVENT_PREFIX_WILDCARD)
        else event == pattern
        for pattern in patterns
    )


@dataclass(frozen=True)
class ScopeReach:
    unrestricted: bool  # a superuser: no scope applies
    exists: bool
    events: list[str]
    may_attach_documents: bool
    users_outside: list[int]
    departments_outside: list[int]
    document_allowed: bool


def _scope_reach(
    *, publisher_id: int, user_ids: Collection[int], department_ids: Collection[int], document_id: int | None
) -> ScopeReach:
    with connection.cursor() as cursor:
        cursor.execute(scope_reach_sql(), [sorted(user_ids), sorted(department_ids), document_id, publisher_id])
        return scope_reach_of(cursor.fetchone())


def scope_reach_of(row) -> ScopeReach:
    """The ScopeReach of a row `scope_reach_sql` selected."""
    is_superuser, scope_id, all_recipients, events, may_attach, users_outside, departments_outside, in_scope = row
    return ScopeReach(
        unrestricted=is_superuser,
        exists=scope_id is not None,
        events=events or [],
        may_attach_documents=bool(may_attach),
        users_outside=users_outside or [],
        departments_outside=departments_outside or [],
        document_allowed=bool(may_attach and (all_recipients or in_scope)),
    )


@functools.cache
def scope_reach_sql(user_ids: str = "%s::bigint[]", department_ids: str = "%s::bigint[]") -> str:
    """The publisher's scope, and what of the recipients (`user_ids`, `department_ids`: id arrays, by
    default the 1st and 2nd parameters) and document (the next parameter) lies beyond it; the publisher is the last.

    Written out: the ORM would take longer to build it than PostgreSQL to run it, on every publish. The lists
    are computed only for a limited scope (CASE runs its subqueries only when taken).
    """
    User = get_user_model()
    user, scope = Columns(User), Columns(PublisherScope)
    membership, document = Columns(DepartmentMembership), Columns(Document)
    named, reached = Columns(PublisherScope.users.through), Columns(PublisherScope.departments.through)
    limited = f"NOT u.{user.is_superuser} AND NOT s.{scope.all_recipients}"
    return f"""
        SELECT u.{user.is_superuser}, s.{scope.id}, s.{scope.all_recipients}, s.{scope.events},
               s.{scope.may_attach_documents},
               CASE WHEN {limited} THEN ARRAY(  -- users neither named nor members of a department reached
                   SELECT r FROM unnest({user_ids}) AS r
                    WHERE NOT EXISTS (SELECT 1 FROM {named.table} n
                                       WHERE n.{named.publisherscope} = s.{scope.id} AND n.{named.user} = r)
                      AND NOT EXISTS (SELECT 1 FROM {reached.table} d
                                        JOIN {membership.table} m ON m.{membership.department} = d.{reached.department}
                                       WHERE d.{reached.publisherscope} = s.{scope.id} AND m.{membership.user} = r)
                    ORDER BY r) END,
               CASE WHEN {limited} THEN ARRAY(  -- departments not reached
                   SELECT r FROM unnest({department_ids}) AS r
                    WHERE NOT EXISTS (SELECT 1 FROM {reached.table} d
                                       WHERE d.{reached.publisherscope} = s.{scope.id} AND d.{reached.department} = r)
                    ORDER BY r) END,
               EXISTS (SELECT 1 FROM {document.table} doc  -- the document belongs to a department reached
                         JOIN {reached.table} d ON d.{reached.department} = doc.{document.department}
                        WHERE doc.{document.id} = %s AND d.{reached.publisherscope} = s.{scope.id})
          FROM {user.table} u LEFT JOIN {scope.table} s ON s.{scope.publisher} = u.{user.id}
         WHERE u.{user.id} = %s
    """  # noqa: S608 - identifiers come from model _meta; values are parameters


def _names(model, name_field: str, ids: list[int]) -> dict[int, str]:
    """Only when refusing: who the ids outside the scope are, for the message."""
    return dict(model.objects.filter(pk__in=ids).values_list("pk", name_field))


def _listed(kind: str, names: list[str]) -> str:
    """`user 17 (carol)`, `users 17 (carol), 18 (dan)`, or the first ten and `and 5 more`."""
    shown = ", ".join(names[:NAMED_IN_MESSAGE])
    more = f" and {len(names) - NAMED_IN_MESSAGE} more" if len(names) > NAMED_IN_MESSAGE else ""
    return f"{kind}{'s' if len(names) > 1 else ''} {shown}{more}"


def _joined(parts: list[str]) -> str:
    text = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return text[0].upper() + text[1:]
