"""seed_demo (idempotent, consistent ledger), setup_roles and check_ledger."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from billing import services
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
from billing.reconcile import ledger_violations

from .. import factories

pytestmark = pytest.mark.django_db


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


def test_seed_demo_is_idempotent_and_the_ledger_reconciles():
    code, out, _ = _run("seed_demo")
    assert code == 0
    assert "admin / admin-demo" in out and "support / support-demo" in out
    first = _snapshot()
    assert first["Account"] == 10
    assert {p.kind for p in Package.objects.all()} == {"free", "monthly", "annual", "custom"}
    code, out, _ = _run("seed_demo")
    assert code == 0 and "nothing to do" in out
    assert _snapshot() == first
    code, out, _ = _run("check_ledger")
    assert code == 0
    assert out.strip() == f"check_ledger: ok, 10 accounts, {first['LedgerEntry']} entries"


def test_seed_demo_states():
    _run("seed_demo")
    statuses = set(Order.objects.values_list("status", flat=True))
    assert statuses == {"draft", "confirmed", "fulfilled", "cancelled"}
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


def test_setup_roles_command():
    code, out, _ = _run("setup_roles")
    assert code == 0 and "role support: ok" in out
    assert _run("setup_roles")[0] == 0
    assert set(Group.objects.values_list("name", flat=True)) >= {"support", "finance", "admin"}


# --- check_ledger finds tampering -----------------------------------------------------


@pytest.fixture
def books(catalog, agreement, t0):
    acme = factories.make_account("Acme", now=t0, balance_fen=30_000)
    order = factories.buy(acme, catalog["pro-monthly"], now=t0)
    beta = factories.make_account("Beta", now=t0, balance_fen=5_000)
    return {"acme": acme, "beta": beta, "order": order}


def test_check_ledger_ok(books):
    code, out, _ = _run("check_ledger")
    assert code == 0
    assert out.strip() == "check_ledger: ok, 2 accounts, 3 entries"


def test_check_ledger_reports_tampered_balance(books):
    acme = books["acme"]
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_account SET balance_fen = balance_fen + 1 WHERE id = %s", [acme.pk]
        )
    code, out, err = _run("check_ledger")
    assert code == 1
    lines = out.strip().splitlines()
    assert lines == [
        f'account #{acme.pk} "Acme": balance ¥201.01 but its ledger sums to ¥201.00',
        f'account #{acme.pk} "Acme": balance ¥201.01 but the last ledger entry says '
        "balance_after ¥201.00",
    ]
    assert "2 violation(s)" in err


def test_check_ledger_reports_raw_ledger_row(books):
    """A ledger row inserted behind the services' back (balance not updated)."""
    beta = books["beta"]
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO billing_ledgerentry (account_id, kind, amount_fen, balance_after_fen,"
            " channel, reference, memo, created_at) VALUES (%s, 'top_up', 700, 9999, '', '', '',"
            " now())",
            [beta.pk],
        )
    code, out, _ = _run("check_ledger")
    assert code == 1
    assert f'account #{beta.pk} "Beta": balance ¥50.00 but its ledger sums to ¥57.00' in out
    assert "balance_after ¥99.99 != previous ¥50.00 + amount ¥7.00" in out
    assert len(ledger_violations()) == 3


def test_check_ledger_reports_order_amount_changed(books):
    order = books["order"]
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_order SET amount_fen = amount_fen + 100 WHERE id = %s", [order.pk]
        )
    code, out, _ = _run("check_ledger")
    assert code == 1
    assert out.strip() == (
        f'order #{order.pk} (fulfilled) of account #{order.account_id} "Acme": '
        "charged ¥99.00 but the order amount is ¥100.00"
    )


def test_check_ledger_reports_paid_order_without_charge(books, t0):
    acme = books["acme"]
    custom = Package.objects.get(code="custom")
    order = services.order_place(
        account=acme,
        package=custom,
        kind="custom",
        agreed_amount_fen=500_00,
        actor=acme.owner,
        now=t0,
    )
    order = services.order_confirm(order=order, actor=acme.owner, now=t0)
    with connection.cursor() as cur:  # a custom order may wait, paid, for staff (P3)
        cur.execute(
            "UPDATE billing_order SET status = 'paid', paid_at = now(),"
            " channel = 'balance' WHERE id = %s",
            [order.pk],
        )
    code, out, _ = _run("check_ledger")
    assert code == 1
    assert f"order #{order.pk} (paid)" in out and "no purchase/renewal ledger entry" in out


def test_check_ledger_reports_charge_on_unpaid_order(books):
    order = books["order"]
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_order SET status = 'confirmed', period_start = NULL,"
            " period_end = NULL WHERE id = %s",
            [order.pk],
        )
    code, out, _ = _run("check_ledger")
    assert code == 1
    assert f"charges order #{order.pk}, which is confirmed, not paid" in out
