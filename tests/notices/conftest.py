import pytest


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
                "withdraw_nonrenewalnotice",
            ],
        )
    )
    return get_user_model().objects.get(pk=user.pk)
