"""Shared fixtures. Tests run against real PostgreSQL and real Redis (see Makefile)."""

import pytest
import redis
from django.conf import settings

from tests.factories import DepartmentFactory, UserFactory, add_members


def pytest_configure(config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise pytest.UsageError(f"The tests run against PostgreSQL, not {engine}: set DATABASE_URL (see Makefile).")


@pytest.fixture(autouse=True)
def fast_password_hasher(settings) -> None:
    """PBKDF2 is slow by design; the tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def redis_client():
    """The test Redis database, emptied before and after the test."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def department(db):
    return DepartmentFactory()


@pytest.fixture
def requester(department):
    user = UserFactory()
    add_members(department, user)
    return user


@pytest.fixture
def approvers(department):
    first, second = UserFactory(), UserFactory()
    add_members(department, first, second)
    return [first, second]
