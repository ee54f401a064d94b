import pytest


@pytest.fixture(autouse=True)
def _fresh_throttles(fresh_throttles):
    """Every API test starts with empty rate-limit counters."""
