"""Staff login to the admin (issue 10, rule 7 least privilege), through the
real login form, never ``force_login``:

- the roles that move money (finance, admin, superusers) need their TOTP code
  as well as their password; support needs a password only;
- a money role without a device enrols one (QR code, key as text) and must
  confirm a code before reaching any admin page; a password never enrols a
  second device;
- failed logins (wrong password, missing or wrong code) are throttled and
  logged by django-axes, with a translated lockout page; a success resets;
- the login records are visible to administrators only;
- staff choose their language, and it persists.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.policy import SHANGHAI
from billing.roles import needs_second_factor
from tests.adminforms import staff_login

from . import factories

pytestmark = pytest.mark.django_db

PASSWORD = "pw"  # factories.make_user
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
LOGIN = "/admin/login/"
INDEX = "/admin/"


@pytest.fixture(autouse=True)
def _frozen():
    """TOTP codes depend on the clock: every test here runs at one instant."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _device(user, *, confirmed: bool = True) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=confirmed)


def _code(device: TOTPDevice) -> str:
    """The code an authenticator app shows now (RFC 6238, from the device key)."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def _wrong_code(device: TOTPDevice) -> str:
    """A code that is valid in no step the device accepts (now, and one step
    either side)."""
    valid = {
        f"{totp(device.bin_key, step=device.step, t0=device.t0, drift=d):06d}" for d in (-1, 0, 1)
    }
    return next(c for c in (f"{n:06d}" for n in range(1, 10)) if c not in valid)


def _login(client: Client, username: str, password: str = PASSWORD, code: str | None = None):
    data = {"username": username, "password": password, "next": INDEX}
    if code is not None:
        data["otp_token"] = code
    return client.post(LOGIN, data)


def _admitted(client: Client) -> bool:
    return client.get(INDEX).status_code == 200


# --- the second factor -----------------------------------------------------------------


def test_who_needs_a_second_factor(db):
    assert not needs_second_factor(factories.make_staff("s", group="support"))
    assert needs_second_factor(factories.make_staff("f", group="finance"))
    assert needs_second_factor(factories.make_staff("a", group="admin"))
    assert needs_second_factor(factories.make_user("root", is_staff=True, is_superuser=True))
    # A customer, and staff without a role, are not asked (nor admitted to money).
    assert not needs_second_factor(factories.make_user("customer"))
    assert not needs_second_factor(factories.make_user("plain", is_staff=True))


def test_finance_login_without_a_code_is_refused(client):
    finance = factories.make_staff("fin", group="finance")
    _device(finance)
    page = _login(client, "fin")
    assert page.status_code == 200
    assert "Your role moves money: enter the 6-digit code" in page.content.decode()
    assert not _admitted(client)
    assert DEVICE_ID_SESSION_KEY not in client.session
    # Counted as a failed login (axes), like a wrong password.
    assert AccessAttempt.objects.get(username="fin").failures_since_start == 1


def test_finance_login_with_a_wrong_code_is_refused(client):
    finance = factories.make_staff("fin", group="finance")
    device = _device(finance)
    page = _login(client, "fin", code=_wrong_code(device))
    assert page.status_code == 200
    assert "That code is wrong or has expired" in page.content.decode()
    assert not _admitted(client)
    assert AccessAttempt.objects.get(username="fin").failures_since_start == 1


def test_finance_login_with_the_right_code_is_admitted(client):
    finance = factories.make_staff("fin", group="finance")
    device = _device(finance)
    response = _login(client, "fin", code=_code(device))
    assert response.status_code == 302 and response["Location"] == INDEX
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert _admitted(client)
    assert client.get(reverse("admin:billing_account_changelist")).status_code == 200
    # The same code cannot be used twice (replay): a second login needs a new one.
    other = Client()
    assert _login(other, "fin", code=_code(device)).status_code == 200
    assert not _admitted(other)


@pytest.mark.django_db(transaction=True)  # next_totp_code reads from its own thread
def test_two_logins_across_a_step_boundary_each_get_a_code_the_device_accepts(_frozen):
    """The browser tests' two logins in a row (tests.factories.next_totp_code):
    the first code is read in the last second of a 30-second step and typed in
    the next one, so django-otp accepts it one step back and re-syncs the
    device's drift to -1; the second code is still one the device accepts."""
    finance = factories.make_staff("fin-steps", group="finance")
    device = _device(finance)
    step_end = (int(NOW.timestamp()) // device.step + 1) * device.step
    _frozen.move_to(dt.datetime.fromtimestamp(step_end - 1, tz=SHANGHAI))
    first = factories.next_totp_code(device.pk)
    _frozen.move_to(dt.datetime.fromtimestamp(step_end + 1, tz=SHANGHAI))
    assert _admitted_with(Client(), "fin-steps", first)
    device.refresh_from_db()
    assert device.drift == -1  # the boundary was really crossed
    # The old way (this step's code, one step ahead) is now two steps ahead.
    assert f"{totp(device.bin_key, step=device.step, drift=1):06d}" != (
        factories.next_totp_code(device.pk)
    )
    assert _admitted_with(Client(), "fin-steps", factories.next_totp_code(device.pk))
    # A third login at once: django-otp re-synced the drift to 0, so the next
    # step's code is still accepted.
    assert _admitted_with(Client(), "fin-steps", factories.next_totp_code(device.pk))
    # When every step the device accepts now is used, no code is offered (the
    # login has to wait for the next step) rather than one it would refuse.
    device.refresh_from_db()
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=device.last_t + 1)
    with pytest.raises(AssertionError, match="no unused code"):
        factories.next_totp_code(device.pk)
    _frozen.shift(device.step)
    assert _admitted_with(Client(), "fin-steps", factories.next_totp_code(device.pk))


def _admitted_with(client: Client, username: str, code: str) -> bool:
    response = _login(client, username, code=code)
    return response.status_code == 302 and _admitted(client)


def test_a_wrong_password_with_the_right_code_is_refused(client):
    finance = factories.make_staff("fin", group="finance")
    device = _device(finance)
    page = _login(client, "fin", password="nope", code=_code(device))
    assert page.status_code == 200
    assert "Please enter the correct username and password" in page.content.decode()
    assert not _admitted(client)


def test_superuser_and_admin_role_need_their_code_too(client):
    root = factories.make_user("root", is_staff=True, is_superuser=True)
    _device(root)
    assert _login(client, "root").status_code == 200
    assert not _admitted(client)
    admin_member = factories.make_staff("adm", group="admin")
    device = _device(admin_member)
    assert _login(client, "adm", code=_code(device)).status_code == 302
    assert _admitted(client)


def test_support_logs_in_with_a_password_only(client):
    factories.make_staff("sup", group="support")
    response = _login(client, "sup")
    assert response.status_code == 302 and response["Location"] == INDEX
    assert _admitted(client)
    page = client.get(reverse("admin:billing_account_changelist"))
    assert page.status_code == 200


def test_the_login_page_asks_for_the_code_in_both_languages(client):
    page = client.get(LOGIN).content.decode()
    assert 'name="otp_token"' in page and "Authenticator code" in page
    client.cookies["django_language"] = "zh-hans"
    page = client.get(LOGIN).content.decode()
    assert 'name="otp_token"' in page and "验证码" in page


def test_a_money_session_that_is_not_verified_gets_no_admin_page(client):
    """Logged in by a password elsewhere (the customer login page, a session
    from before a role change): no admin page, the login asks for the code."""
    finance = factories.make_staff("fin", group="finance")
    _device(finance)
    client.force_login(finance)  # a password-only session, not a staff login
    for url in (INDEX, reverse("admin:billing_account_changelist")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    page = client.get(LOGIN).content.decode()
    assert "whose role moves money" in page


def test_staff_login_helper_verifies_money_roles(client):
    """The helper every admin test uses leaves the session a login with the
    right code leaves."""
    finance = factories.make_staff("fin", group="finance")
    staff_login(client, finance)
    device = TOTPDevice.objects.get(user=finance)
    assert device.confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert _admitted(client)


# --- enrolment -------------------------------------------------------------------------


def test_a_money_role_without_a_device_enrols_before_reaching_the_admin(client):
    factories.make_staff("fin", group="finance")
    enrol = reverse("admin:second_factor_enrol")
    response = _login(client, "fin")
    assert response.status_code == 302 and response["Location"].startswith(enrol)
    # No admin page until the device is confirmed: every way leads to enrolment.
    assert not _admitted(client)
    assert client.get(LOGIN)["Location"].startswith(enrol)
    page = client.get(enrol)
    html = page.content.decode()
    device = TOTPDevice.objects.get(user__username="fin")
    assert not device.confirmed
    assert "<svg" in html and "<path" in html  # the QR code, inline
    key = base64.b32encode(device.bin_key).decode()
    shown = re.search(r'<code id="totp-key">([A-Z2-7 ]+)</code>', html).group(1)
    assert shown.replace(" ", "") == key
    # Reloading shows the same key (the app may already have scanned it).
    assert key in client.get(enrol).content.decode().replace(" ", "")
    # A wrong code: refused, nothing confirmed.
    page = client.post(enrol, {"otp_token": _wrong_code(device)})
    assert "That code is wrong or has expired" in page.content.decode()
    device.refresh_from_db()
    assert not device.confirmed and not _admitted(client)
    # The right code (a step later: the device throttles after a failure).
    with time_machine.travel(NOW + dt.timedelta(seconds=60), tick=False):
        response = client.post(enrol, {"otp_token": _code(device), "next": INDEX})
        assert response.status_code == 302 and response["Location"] == INDEX
        device.refresh_from_db()
        assert device.confirmed
        assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
        assert _admitted(client)
    # From now on the code is required, and a password never enrols another device.
    other = Client()
    with time_machine.travel(NOW + dt.timedelta(seconds=120), tick=False):
        assert _login(other, "fin").status_code == 200
        assert other.get(enrol)["Location"] == LOGIN
        assert TOTPDevice.objects.filter(user__username="fin").count() == 1
        assert _login(other, "fin", code=_code(device)).status_code == 302
        assert _admitted(other)


def test_support_and_strangers_have_no_enrolment_page(client):
    enrol = reverse("admin:second_factor_enrol")
    assert client.get(enrol)["Location"] == LOGIN
    factories.make_staff("sup", group="support")
    _login(client, "sup")
    assert client.get(enrol)["Location"] == LOGIN
    assert not TOTPDevice.objects.exists()


# --- throttling (django-axes) -----------------------------------------------------------


def test_failed_logins_lock_the_user_out_even_with_the_right_password(client, settings):
    factories.make_staff("sup", group="support")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "sup", password="wrong").status_code == 200
    locked = _login(client, "sup", password="wrong")
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins: this login is locked for 30 minutes" in html
    assert "MTlogin billing back office" in html  # the admin's own page, not raw text
    # The right password does not help now.
    again = _login(client, "sup")
    assert again.status_code == 429
    assert not _admitted(client)
    attempt = AccessAttempt.objects.get(username="sup")
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT
    assert attempt.path_info == LOGIN
    assert AccessFailureLog.objects.filter(username="sup", locked_out=True).exists()
    # In Chinese too.
    client.cookies["django_language"] = "zh-hans"
    assert "登录失败次数过多" in _login(client, "sup").content.decode()
    # After the cool-off the right password works again.
    with time_machine.travel(NOW + settings.AXES_COOLOFF_TIME + dt.timedelta(minutes=1)):
        assert _login(client, "sup").status_code == 302


def test_wrong_codes_lock_a_money_role_out(client, settings):
    finance = factories.make_staff("fin", group="finance")
    device = _device(finance)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "fin", code=_wrong_code(device))
    response = _login(client, "fin", code=_code(device))
    assert response.status_code == 429
    assert not _admitted(client)


def test_a_successful_login_resets_the_failures(client, settings):
    factories.make_staff("sup", group="support")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "sup", password="wrong")
    assert _login(client, "sup").status_code == 302
    assert not AccessAttempt.objects.filter(username="sup", failures_since_start__gt=0).exists()
    client.post(reverse("admin:logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "sup", password="wrong").status_code == 200
    assert _login(client, "sup").status_code == 302


@pytest.mark.parametrize("role, allowed", [("support", False), ("finance", False), ("admin", True)])
def test_login_records_are_visible_to_administrators_only(client, role, allowed):
    Client().post(LOGIN, {"username": "mallory", "password": "guess"})
    staff_login(client, factories.make_staff(f"{role}_x", group=role))
    for name in ("accessattempt", "accessfailurelog", "accesslog"):
        page = client.get(reverse(f"admin:axes_{name}_changelist"))
        assert page.status_code == (200 if allowed else 403), name
    if allowed:
        attempt = AccessAttempt.objects.get(username="mallory")
        page = client.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk]))
        html = page.content.decode()
        assert "mallory" in html and 'name="_save"' not in html  # read only
        assert (
            client.post(
                reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
            ).status_code
            == 403
        )
        assert client.get(reverse("admin:axes_accessattempt_add")).status_code == 403
    index = client.get(INDEX).content.decode()
    assert ("/admin/axes/accessattempt/" in index) is allowed


def test_only_superusers_see_second_factor_devices(client):
    admin_member = factories.make_staff("adm", group="admin")
    assert not any(
        admin_member.has_perm(f"otp_totp.{a}_totpdevice")
        for a in ("add", "change", "delete", "view")
    )
    staff_login(client, admin_member)
    assert client.get(reverse("admin:otp_totp_totpdevice_changelist")).status_code == 403


# --- roles by name, language choice -------------------------------------------------------


def test_roles_are_shown_by_their_translated_names(client):
    for role in ("support", "finance", "admin"):
        factories.make_staff(f"{role}_named", group=role)
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    staff_login(client, root)
    users = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "Support" in users and "Finance" in users and "Administrator" in users
    client.cookies["django_language"] = "zh-hans"
    users = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "客服" in users and "财务" in users and "管理员" in users
    # The role filter names them too.
    assert re.search(r'<a href="\?groups__id__exact=\d+">财务</a>', users)
    groups = client.get(reverse("admin:auth_group_changelist")).content.decode()
    assert "客服" in groups and "财务" in groups
    finance = get_user_model().objects.get(username="finance_named")
    page = client.get(reverse("admin:auth_user_change", args=[finance.pk])).content.decode()
    assert re.search(r"<option[^>]*selected[^>]*>财务</option>", page)


def test_staff_choose_their_language_and_it_persists(client):
    support = factories.make_staff("sup", group="support")
    staff_login(client, support)
    index = client.get(INDEX).content.decode()
    assert 'action="/i18n/setlang/"' in index and 'name="language"' in index
    assert "MTlogin billing back office" in index
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": INDEX})
    assert response.status_code == 302 and response["Location"] == INDEX
    assert "MTlogin 计费后台" in client.get(INDEX).content.decode()
    # Still Chinese after logging out and in again (the choice is a lasting cookie).
    client.post(reverse("admin:logout"))
    assert (
        client.cookies["django_language"]["max-age"] or client.cookies["django_language"]["expires"]
    )
    assert "验证码" in client.get(LOGIN).content.decode()
    _login(client, "sup")
    assert "MTlogin 计费后台" in client.get(INDEX).content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": INDEX})
    assert "MTlogin billing back office" in client.get(INDEX).content.decode()
