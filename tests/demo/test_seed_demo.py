"""seed_demo: idempotent demo data with a consistent ledger, and never in
production by accident (refused when DEBUG is false unless --allow-production)."""

import base64
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp

from billing.models import (
    Acceptance,
    Account,
    AgreementVersion,
    LedgerEntry,
    Order,
    Package,
    PriceVersion,
    Subscription,
)
from billing.selectors import orders_awaiting_fulfilment_too_long

from ..processes import manage, production

REFUSAL = (
    "seed_demo refused: DEBUG is false (production), and the demo creates logins whose "
    "passwords are published. Run it with DEBUG=true, or add --allow-production if this "
    "database really is a demo or staging one."
)


@pytest.fixture
def debug(settings):
    """The demo runs with DEBUG=true (`dev.py run`); pytest-django turns it off."""
    settings.DEBUG = True


def _snapshot():
    models = [Package, PriceVersion, AgreementVersion, Account, Subscription, Order, LedgerEntry]
    counts = {m.__name__: m.objects.count() for m in [*models, Acceptance]}
    counts["users"] = get_user_model().objects.count()
    counts["groups"] = Group.objects.count()
    counts["balances"] = sorted(Account.objects.values_list("name", "balance_fen"))
    counts["history"] = Order.history.count() + Subscription.history.count()
    return counts


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_the_ledger_reconciles(debug):
    code, out, _ = _run("seed_demo")
    assert code == 0
    assert "admin / admin-demo" in out and "support / support-demo" in out
    first = _snapshot()
    assert first["Account"] == 11
    assert {p.kind for p in Package.objects.all()} == {"free", "monthly", "annual", "custom"}
    code, out, _ = _run("seed_demo")
    assert code == 0 and "nothing to do" in out
    assert _snapshot() == first
    code, out, _ = _run("check_ledger")
    assert code == 0
    assert out.strip() == f"check_ledger: ok, 11 accounts, {first['LedgerEntry']} entries"


@pytest.mark.django_db
def test_seed_demo_states(debug):
    _run("seed_demo")
    statuses = set(Order.objects.values_list("status", flat=True))
    assert statuses == {"draft", "confirmed", "paid", "fulfilled", "cancelled"}
    # A custom service paid a week ago and not delivered: an E3 candidate (P3).
    assert [o.account.name for o in orders_awaiting_fulfilment_too_long()] == ["玉石科技 Jade Tech"]
    kinds = set(
        Subscription.objects.exclude(status="ended").values_list("package__kind", flat=True)
    )
    assert kinds == {"free", "monthly", "annual", "custom"}
    assert Subscription.objects.filter(status="past_due").count() == 1
    assert Account.objects.filter(language="zh-hans").count() >= 2
    future = PriceVersion.objects.filter(effective_from__gt=timezone.now())
    assert future.count() == 1
    agreement = AgreementVersion.objects.get(version="2024-02-05")
    assert agreement.text.startswith("Refund Policy")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin-demo")
    finance = get_user_model().objects.get(username="finance")
    assert finance.has_perm("billing.top_up_balance") and not finance.is_superuser
    support = get_user_model().objects.get(username="support")
    assert support.is_staff and not support.has_perm("billing.top_up_balance")


@pytest.mark.django_db
def test_the_demo_money_roles_log_in_with_the_printed_key(debug, client):
    """Issue 10: the demo's finance and admin users have a TOTP device whose
    key seed_demo prints, so a person logs in with any authenticator app (or
    oathtool); support logs in with its password only."""
    code, out, _ = _run("seed_demo")
    assert code == 0
    keys = dict(
        re.findall(r"^  (finance|admin): ([A-Z2-7]{32})   \(oathtool --totp -b \2\)$", out, re.M)
    )
    assert set(keys) == {"finance", "admin"}
    for username, password in (("finance", "finance-demo"), ("admin", "admin-demo")):
        client.post(reverse("admin:logout"))
        data = {"username": username, "password": password, "next": "/admin/"}
        assert client.post("/admin/login/", data).status_code == 200  # the code is missing
        token = f"{totp(base64.b32decode(keys[username])):06d}"
        response = client.post("/admin/login/", {**data, "otp_token": token})
        assert response.status_code == 302, username
        assert client.get("/admin/").status_code == 200
    client.post(reverse("admin:logout"))
    data = {"username": "support", "password": "support-demo", "next": "/admin/"}
    assert client.post("/admin/login/", data).status_code == 302
    assert client.get("/admin/").status_code == 200


# --- never in production by accident ------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_refuses_when_debug_is_false(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", stdout=io.StringIO())
    assert refused.value.returncode == 2
    assert str(refused.value) == REFUSAL
    assert get_user_model().objects.count() == 0 and Package.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_seed_demo_in_production_exits_2_and_writes_nothing():
    result = manage("seed_demo", **production())
    assert result.returncode == 2
    assert result.stderr.strip() == f"CommandError: {REFUSAL}"
    assert result.stdout == ""
    assert get_user_model().objects.count() == 0 and Package.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_seed_demo_in_production_runs_with_allow_production():
    result = manage("seed_demo", "--allow-production", **production())
    assert result.returncode == 0, result.stderr
    assert "admin / admin-demo" in result.stdout
    assert Account.objects.count() == 11
    assert get_user_model().objects.get(username="admin").is_superuser


@pytest.mark.django_db
def test_demo_customers_log_in_on_the_account_pages(debug, client):
    """Issue 11: the README's customer logins work at /accounts/login/, land
    on their own overview, and their addresses count as confirmed."""
    from demo.management.commands.seed_demo import CUSTOMER_PASSWORD

    code, out, _err = _run("seed_demo")
    assert code == 0
    assert "log in at /accounts/login/" in out
    for username, account_name in (("lin", "Lin Studio"), ("acme", "Acme Trading Co.")):
        response = client.post(
            "/accounts/login/", {"username": username, "password": CUSTOMER_PASSWORD}
        )
        assert response.status_code == 302 and response["Location"] == "/account/", username
        body = client.get("/account/").content.decode()
        assert account_name in body
        assert 'id="confirm-email-banner"' not in body
        client.post("/accounts/logout/")
