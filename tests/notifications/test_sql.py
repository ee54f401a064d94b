"""Array parameters of the hand-written statements: one literal, read back by PostgreSQL as the same array."""

import pytest
from django.db import connection

from notifications.sql import boolean_array, integer_array

pytestmark = pytest.mark.django_db


def test_an_integer_array_literal_is_the_same_array_in_postgresql():
    ids = [7, 3, 1_000_000, 42]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::integer[], %s::integer[]", [integer_array(ids), integer_array([])])
        assert cursor.fetchone() == (ids, [])


def test_a_boolean_array_literal_is_the_same_array_in_postgresql():
    flags = [True, False, False, True]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::boolean[]", [boolean_array(flags)])
        assert cursor.fetchone() == (flags,)


def test_only_integers_go_into_an_integer_array_literal():
    with pytest.raises(ValueError):
        integer_array(["1}", "{2"])
