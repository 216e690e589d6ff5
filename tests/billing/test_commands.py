"""setup_roles and check_ledger (seed_demo: tests/demo)."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from billing import services
from billing.reconcile import ledger_violations

from .. import factories

pytestmark = pytest.mark.django_db


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


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
    order = services.order_place(
        account=acme, package=books["order"].package, actor=acme.owner, now=t0
    )
    order = services.order_confirm(order=order, actor=acme.owner, now=t0)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_order SET status = 'paid', paid_at = now(), period_start = now(),"
            " channel = 'balance' WHERE id = %s",
            [order.pk],
        )
    code, out, _ = _run("check_ledger")
    assert code == 1
    assert f"order #{order.pk} (paid)" in out and "no purchase/renewal ledger entry" in out


def test_check_ledger_reports_charge_on_unpaid_order(books):
    order = books["order"]
    with connection.cursor() as cur:
        cur.execute("UPDATE billing_order SET status = 'confirmed' WHERE id = %s", [order.pk])
    code, out, _ = _run("check_ledger")
    assert code == 1
    assert f"charges order #{order.pk}, which is confirmed, not paid" in out
