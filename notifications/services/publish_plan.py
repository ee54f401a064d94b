"""The read half of an API publish: everything it must know before writing, in one database round trip.

Whether the publisher may publish (active, the permission), the recipients it named resolved to ids
(which names matched nothing), its scope's reach over them, and every distinct active recipient who has not
muted the event, with the targeted departments' members. The write half is one statement too
(services/publish_request.py): an API publish costs two round trips to PostgreSQL, whatever its recipients.

The pieces are the ones the workflow's publish and the scope check use on their own (`scope_reach_sql`,
`unmuted_recipients_sql`, `may_publish_sql`), composed as one statement here.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection

from notifications.errors import UnknownRecipients
from notifications.preferences import is_always_mandatory, unmuted_recipients_sql
from notifications.selectors import may_publish_sql
from notifications.services.publish import recipients_by_department
from notifications.services.publisher_scope import ScopeReach, scope_reach_of, scope_reach_sql
from notifications.sql import Columns
from workflow.models import Department, DepartmentMembership

# An id PostgreSQL's bigint cannot hold names no row: it is unknown like any other (and never a parameter).
BIGINT_RANGE = range(-(2**63), 2**63)


@dataclass(frozen=True)
class PublishPlan:
    may_publish: bool  # active, and holds the permission (or is a superuser)
    scope: ScopeReach
    user_ids: set[int]  # the users named, resolved
    department_ids: set[int]  # the departments named, resolved
    recipient_ids: list[int]  # every distinct active recipient who gets the event, sorted
    department_member_ids: dict[int, set[int]]  # per targeted department, its recipients


def publish_plan(
    *,
    publisher_id: int,
    users: Sequence[int | str],
    departments: Sequence[int | str],
    event: str,
    document_id: int | None,
) -> PublishPlan | None:
    """What publishing `event` to these references would do; None if the publisher no longer exists.

    Raises `UnknownRecipients` listing every reference (id or name, as the caller wrote it) that matched nothing.
    """
    users, departments = list(dict.fromkeys(users)), list(dict.fromkeys(departments))
    user_ids = [reference for reference in users if isinstance(reference, int) and reference in BIGINT_RANGE]
    usernames = [reference for reference in users if isinstance(reference, str)]
    department_ids = [
        reference for reference in departments if isinstance(reference, int) and reference in BIGINT_RANGE
    ]
    codes = [reference for reference in departments if isinstance(reference, str)]
    with connection.cursor() as cursor:
        cursor.execute(
            _publish_plan_sql(),
            [
                *(user_ids, usernames, department_ids, codes),
                *(event, event, is_always_mandatory(event)),
                *("notifications", "publish_notification", publisher_id, publisher_id, publisher_id),
                *(document_id, publisher_id),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    found_users, found_departments, targets, may_publish, *scope_row = row
    resolved_users = _resolved(users, found_users)
    resolved_departments = _resolved(departments, found_departments)
    unknown_users = [reference for reference in users if reference not in resolved_users]
    unknown_departments = [reference for reference in departments if reference not in resolved_departments]
    if unknown_users or unknown_departments:
        raise UnknownRecipients(user_ids=unknown_users, department_ids=unknown_departments)
    recipient_ids, department_member_ids = recipients_by_department(targets)
    return PublishPlan(
        may_publish=may_publish,
        scope=scope_reach_of(scope_row),
        user_ids=set(resolved_users.values()),
        department_ids=set(resolved_departments.values()),
        recipient_ids=recipient_ids,
        department_member_ids=department_member_ids,
    )


def _resolved(references: list[int | str], found: list[list]) -> dict[int | str, int]:
    """{reference: id} for the references that name a row; `found` holds the matching rows' [id, name]."""
    wanted = set(references)
    resolved: dict[int | str, int] = {}
    for pk, name in found:
        if pk in wanted:
            resolved[pk] = pk
        if name in wanted:
            resolved[name] = pk
    return resolved


@functools.cache
def _publish_plan_sql() -> str:
    """Parameters: user ids, usernames, department ids, codes; the event twice and whether it is always
    mandatory; the permission's app label and codename and the publisher twice; the document and the publisher.

    No row if the publisher does not exist. Written out for the reason the pieces are: built once, planned fast.
    """
    User = get_user_model()
    user, department, membership = Columns(User), Columns(Department), Columns(DepartmentMembership)
    username = getattr(user, User.USERNAME_FIELD)  # its quoted column
    targets = f"""
        SELECT m.{membership.department} AS department_id, m.{membership.user} AS user_id
          FROM {membership.table} m JOIN {user.table} u ON u.{user.id} = m.{membership.user}
         WHERE m.{membership.department} IN (SELECT id FROM department_refs) AND u.{user.is_active}
        UNION ALL
        SELECT NULL, id FROM user_refs WHERE is_active
    """  # noqa: S608 - identifiers come from model _meta
    return f"""
        WITH user_refs AS (
            SELECT u.{user.id} AS id, u.{username} AS name, u.{user.is_active} AS is_active FROM {user.table} u
             WHERE u.{user.id} = ANY(%s::bigint[]) OR u.{username} = ANY(%s::text[])
        ), department_refs AS (
            SELECT d.{department.id} AS id, d.{department.code} AS name FROM {department.table} d
             WHERE d.{department.id} = ANY(%s::bigint[]) OR d.{department.code} = ANY(%s::text[])
        ), recipients AS (
            {unmuted_recipients_sql(targets=targets, user_column="user_id")}
        )
        SELECT (SELECT COALESCE(json_agg(json_build_array(id, name)), '[]') FROM user_refs),
               (SELECT COALESCE(json_agg(json_build_array(id, name)), '[]') FROM department_refs),
               (SELECT COALESCE(json_agg(json_build_array(department_id, user_id)), '[]') FROM recipients),
               publisher.may_publish,
               reach.*
          FROM (
            SELECT u.{user.is_active} AND (u.{user.is_superuser} OR ({may_publish_sql()})) AS may_publish
              FROM {user.table} u WHERE u.{user.id} = %s
          ) AS publisher
          CROSS JOIN (
            {scope_reach_sql("ARRAY(SELECT id FROM user_refs)", "ARRAY(SELECT id FROM department_refs)")}
          ) AS reach
    """  # noqa: S608 - identifiers come from model _meta; values are parameters
