"""Publishing's authentication: the token's user and whether they may publish, from one query, and a
publisher's answer remembered for a few seconds.

An internal app publishes in bursts, each request with the same token. simplejwt would load the user on every
one of them, and the permission check would ask once more. Here an answer of "active and may publish" is kept
for `REMEMBERED_SECONDS` per process, so a burst costs no query before the publish itself. That is safe to
remember because it is not the last word: the publish reads both again in its own query
(services/publish_plan.py) and refuses a publisher deactivated or stripped of the permission meanwhile. A "no"
is never remembered, so a permission just granted works at once.
"""

import threading
import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from notifications.selectors import may_publish_sql
from notifications.sql import Columns

REMEMBERED_SECONDS = 10.0


@dataclass(frozen=True)
class PublisherStatus:
    user_id: int
    username: str
    is_active: bool
    is_superuser: bool
    is_staff: bool
    may_publish: bool


class _Remembered:
    """{user id: (remembered until, PublisherStatus)} for publishers, shared by the process's request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[int, tuple[float, PublisherStatus]] = {}

    def get(self, user_id: int) -> PublisherStatus | None:
        entry = self._statuses.get(user_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def keep(self, status: PublisherStatus) -> None:
        with self._lock:
            self._statuses[status.user_id] = (time.monotonic() + REMEMBERED_SECONDS, status)

    def forget(self, user_id: int | None = None) -> None:
        with self._lock:
            if user_id is None:
                self._statuses.clear()
            else:
                self._statuses.pop(user_id, None)


remembered = _Remembered()


def publisher_status(user_id: int) -> PublisherStatus | None:
    """The user's status (None: no such user): remembered if they may publish, else read again each time."""
    status = remembered.get(user_id)
    if status is not None:
        return status
    User = get_user_model()
    user = Columns(User)
    username = getattr(user, User.USERNAME_FIELD)  # its quoted column
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT u.{username}, u.{user.is_active}, u.{user.is_superuser}, u.{user.is_staff},"  # noqa: S608 (identifiers from _meta)
            f" u.{user.is_active} AND (u.{user.is_superuser} OR ({may_publish_sql()}))"
            f" FROM {user.table} u WHERE u.{user.id} = %s",
            ["notifications", "publish_notification", user_id, user_id, user_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    status = PublisherStatus(user_id, *row)
    if status.may_publish:
        remembered.keep(status)
    return status


class PublisherJWTAuthentication(JWTAuthentication):
    """simplejwt's JWT authentication (same header, same answers) with the user from `publisher_status`."""

    def get_user(self, validated_token):  # simplejwt's AuthUser: a TypeVar mypy cannot bind to our User here
        try:
            user_id = int(validated_token[api_settings.USER_ID_CLAIM])
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("Token contained no recognizable user identification") from None
        status = publisher_status(user_id)
        if status is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not status.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        user = get_user_model()(
            pk=status.user_id, is_active=True, is_superuser=status.is_superuser, is_staff=status.is_staff
        )
        setattr(user, user.USERNAME_FIELD, status.username)
        user.publisher_status = status  # type: ignore[attr-defined]  # for CanPublishNotifications: no second query
        return user


def _forget_user(sender, instance, **kwargs) -> None:
    remembered.forget(instance.pk)


def _forget_everyone(sender, **kwargs) -> None:
    # Permissions or group memberships changed (rare): whose answers it changes is not worth working out.
    remembered.forget()


def connect_receivers() -> None:
    """A change in this process applies at once here; other processes re-read within REMEMBERED_SECONDS (and
    the publish's own query applies it to every publish at once)."""
    User = get_user_model()
    post_save.connect(_forget_user, sender=User, dispatch_uid="publisher-status-user-saved")
    post_delete.connect(_forget_user, sender=User, dispatch_uid="publisher-status-user-deleted")
    from django.contrib.auth.models import Group

    for through in (User.user_permissions.through, User.groups.through, Group.permissions.through):
        m2m_changed.connect(_forget_everyone, sender=through, dispatch_uid=f"publisher-status-{through.__name__}")
