"""People of the out-of-office tests: named, so messages and timelines read as the docs describe them."""

import pytest

from tests.support.factories import UserFactory


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", first_name="Bob", last_name="Baker")


@pytest.fixture
def carol(db):
    return UserFactory(username="carol", first_name="Carol", last_name="Cole")
