"""setup_roles and check_ledger (seed_demo: tests/demo)."""

import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from billing import services
from billing.models import LedgerEntry, Order, Package
from billing.reconcile import ledger_violations
from renewals.services import renewal_scan

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
    custom = Package.objects.get(code="custom")
    order = services.order_place(
        account=acme,
        package=custom,
        kind="custom",
        agreed_amount_fen=500_00,
        actor=factories.factory_finance(),
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


# --- hardening item 11: what check_ledger also checks ---------------------------------


def _violations_after(sql, params=()):
    with connection.cursor() as cur:
        cur.execute(sql, params)
    code, out, _ = _run("check_ledger")
    assert code == 1
    return out


def test_check_ledger_reports_entry_on_another_accounts_order(books):
    acme, beta, order = books["acme"], books["beta"], books["order"]
    out = _violations_after(
        "INSERT INTO billing_ledgerentry (account_id, kind, amount_fen, balance_after_fen,"
        " order_id, channel, reference, memo, created_at) VALUES (%s, 'refund', 100, 5100, %s,"
        " '', '', '', now())",
        [beta.pk, order.pk],
    )
    assert (
        f'account #{beta.pk} "Beta": ledger entry #' in out
        and f"is for order #{order.pk}, which belongs to account #{acme.pk}" in out
    )


def test_check_ledger_reports_refunded_amount_without_refund_entries(books):
    order = books["order"]
    out = _violations_after("UPDATE billing_order SET refunded_fen = 100 WHERE id = %s", [order.pk])
    assert f"order #{order.pk} of " in out
    assert "refunded ¥1.00 but its refund entries sum to ¥0.00" in out


def test_check_ledger_reports_external_payment_without_its_top_up(books, catalog, t0):
    beta = books["beta"]
    order = factories.buy(beta, catalog["pro-monthly"], now=t0, channel="offline")
    assert _run("check_ledger")[0] == 0
    out = _violations_after(
        "UPDATE billing_order SET external_reference = 'OTHER-REF' WHERE id = %s", [order.pk]
    )
    assert f"order #{order.pk} of " in out
    assert "paid offline but no top-up of ¥99.00 records the money received" in out


def test_check_ledger_reports_renewal_not_at_the_p4_price(books, catalog, t0):
    """A price version slipped in behind the services (published before the
    deadline, in effect at the period end): the renewal no longer matches P4."""
    sub = books["order"].subscription
    renewal_scan(at=sub.current_period_end, trigger="command")
    renewal = Order.objects.get(kind="renewal", subscription=sub)
    assert _run("check_ledger")[0] == 0
    out = _violations_after(
        "INSERT INTO billing_priceversion (package_id, amount_fen, effective_from, published_at)"
        " VALUES (%s, 12900, %s, %s)",
        [sub.package_id, t0 + dt.timedelta(days=1), t0 + dt.timedelta(days=1)],
    )
    assert f"order #{renewal.pk} (renewal) of " in out
    assert "charged ¥99.00 but P4 gives ¥129.00" in out


def test_check_ledger_reports_overlapping_paid_periods(books, catalog, t0):
    acme, first = books["acme"], books["order"]
    second = factories.buy(
        acme, catalog["pro-annual"], now=t0 + dt.timedelta(days=3), channel="online"
    )
    # Bought on top of a live month: three days of that month are paid twice.
    code, out, _ = _run("check_ledger")
    assert code == 1
    assert f"the paid periods of orders #{first.pk} and #{second.pk} overlap" in out


def test_check_ledger_reports_a_missing_append_only_trigger(books):
    out = _violations_after("DROP TRIGGER billing_ledger_no_truncate ON billing_ledgerentry")
    assert out.strip().splitlines()[0] == (
        "table billing_ledgerentry: no append-only trigger refuses TRUNCATE"
    )


@pytest.mark.django_db(transaction=True)
def test_check_ledger_reports_a_disabled_append_only_trigger(books):
    try:
        out = _violations_after("ALTER TABLE billing_ledgerentry DISABLE TRIGGER USER")
    finally:
        with connection.cursor() as cur:
            cur.execute("ALTER TABLE billing_ledgerentry ENABLE TRIGGER USER")
    assert "no append-only trigger refuses UPDATE, DELETE, TRUNCATE" in out


@pytest.mark.django_db(transaction=True)
def test_ledger_refuses_truncate(books):
    refused = pytest.raises(IntegrityError, match="append-only: TRUNCATE refused")
    with connection.cursor() as cur, refused, transaction.atomic():
        cur.execute("SET LOCAL billing.allow_truncate = 'off'")
        cur.execute("TRUNCATE billing_ledgerentry CASCADE")
    assert LedgerEntry.objects.count() == 3
