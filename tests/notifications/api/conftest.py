import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_throttles(db):
    """API rate-limit counters live in the cache (the test Redis database): every API test starts at zero."""
    cache.clear()


@pytest.fixture
def publisher():
    from tests.support.api import make_publisher

    return make_publisher()
