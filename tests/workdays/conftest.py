import pytest

from workdays.services import calendar_cache_clear


@pytest.fixture(autouse=True)
def _fresh_calendar_cache():
    """Each test starts and ends with an empty calendar cache, so no test sees
    a calendar another test's rolled-back transaction left in this process."""
    calendar_cache_clear()
    yield
    calendar_cache_clear()
