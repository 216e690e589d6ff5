import pytest

from workdays.services import calendar_cache_clear


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Test users are created with a password; PBKDF2 would cost ~0.5 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_calendar_cache():
    """Each test starts and ends with an empty calendar cache, so no test sees
    a calendar another test's rolled-back transaction left in this process."""
    calendar_cache_clear()
    yield
    calendar_cache_clear()
