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


@pytest.fixture
def notice_support(db):
    """A support agent who may record and withdraw notices (P5) but not move money."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from .. import factories

    user = factories.make_staff("support_notices", group="support")
    group = user.groups.get(name="support")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="notices",
            codename__in=[
                "add_nonrenewalnotice",
                "view_nonrenewalnotice",
                "change_nonrenewalnotice",
            ],
        )
    )
    return get_user_model().objects.get(pk=user.pk)
