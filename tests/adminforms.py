"""Submitting the admin's money forms as a browser does (item 9): load the
page, which issues its one-time token, then post the form with that token."""

from __future__ import annotations

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.roles import needs_second_factor


def page_token(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.context["form_token"]


def money_post(client, url: str, data: dict, **kwargs):
    """GET the form page for its one-time token, then POST ``data`` with it."""
    return client.post(url, {**data, "form_token": page_token(client, url)}, **kwargs)


def staff_login(client, user) -> None:
    """Log ``user`` in to ``client`` as the admin sees a real login.

    Every admin test logs staff in through this helper: a role that moves
    money (finance, admin, superusers) also gets a confirmed TOTP device and a
    session verified with it, as a login with the right code leaves it
    (``django_otp.login``: the device's persistent id in the session).
    tests/test_staff_login.py logs in through the real form."""
    client.force_login(user)
    if needs_second_factor(user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by(
            "pk"
        ).first() or TOTPDevice.objects.create(user=user, name="admin", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
