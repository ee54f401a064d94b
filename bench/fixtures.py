"""The bench's own data in its own database: users, one department, a scoped publisher, and their tokens.

Everything here runs in the driver after `django.setup()` with the bench's
DATABASE_URL. The bench database is emptied at the start of every run and its
notification tables between server runs, so every server starts from the same
state (and nobody reconnects to a backlog of unacknowledged replays).
"""

from dataclasses import dataclass

import psycopg
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from notifications.models import Delivery, PublisherScope
from workflow.models import Department, DepartmentMembership

USERNAME_PREFIX = "bench-user-"
PUBLISHER_USERNAME = "bench-publisher"
DEPARTMENT_CODE = "bench-fanout"
EVENT_PREFIX = "bench."  # every event the bench publishes starts with it (its publisher's scope allows them)


@dataclass(frozen=True)
class Population:
    user_ids: list[int]  # index = connection key; the first `department_size` are the department's members
    tokens: list[str]
    department_id: int
    department_size: int
    publisher_id: int
    publisher_token: str


def ensure_database(database_url: str) -> None:
    """Create the bench database if it does not exist (it is the bench's alone)."""
    parts = psycopg.conninfo.conninfo_to_dict(database_url)
    name = parts.pop("dbname")
    with psycopg.connect(psycopg.conninfo.make_conninfo(**parts, dbname="postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def migrate_and_flush() -> None:
    call_command("migrate", interactive=False, verbosity=0)
    call_command("flush", interactive=False, verbosity=0)


def create_population(*, users: int, department_size: int) -> Population:
    """`users` plain users (the first `department_size` in one department) and a publisher, with access tokens."""
    User = get_user_model()
    User.objects.bulk_create(
        [User(username=f"{USERNAME_PREFIX}{index:05d}", password="!unusable") for index in range(users)],  # noqa: S106
        batch_size=2_000,
    )
    user_ids = list(
        User.objects.filter(username__startswith=USERNAME_PREFIX).order_by("username").values_list("pk", flat=True)
    )
    department = Department.objects.create(code=DEPARTMENT_CODE, name="Benchmark fan-out")
    DepartmentMembership.objects.bulk_create(
        [DepartmentMembership(department=department, user_id=user_id) for user_id in user_ids[:department_size]],
        batch_size=2_000,
    )
    publisher = User.objects.create(username=PUBLISHER_USERNAME, password="!unusable")  # noqa: S106
    publisher.user_permissions.add(
        Permission.objects.get(codename="publish_notification", content_type__app_label="notifications")
    )
    # A scope that names every recipient, as a publisher limited to some would have: each publish pays for
    # the check of its recipients against the scope, not the shortcut of an all-recipients one.
    scope = PublisherScope.objects.create(publisher=publisher, events=[f"{EVENT_PREFIX}*"])
    scope.departments.add(department)
    scope.users.add(*user_ids)
    return Population(
        user_ids=user_ids,
        tokens=[access_token(user_id) for user_id in user_ids],
        department_id=department.pk,
        department_size=department_size,
        publisher_id=publisher.pk,
        publisher_token=access_token(publisher.pk),
    )


def access_token(user_id: int) -> str:
    """A simplejwt access token for the user, minted locally (what /api/auth/token/ would return)."""
    User = get_user_model()
    return str(AccessToken.for_user(User(pk=user_id)))


def reset_notifications() -> None:
    """Empty the notification tables, so the next server starts with no backlog to replay."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE notifications_deliveryattempt, notifications_delivery, notifications_notification CASCADE"
        )


def acknowledged_count(notification_ids: list[str]) -> int:
    """How many deliveries of these notifications are acknowledged in the database."""
    return Delivery.objects.filter(notification_id__in=notification_ids, acknowledged_at__isnull=False).count()
