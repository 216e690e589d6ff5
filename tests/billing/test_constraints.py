"""Each database constraint, proven by a raw write the database refuses (PostgreSQL)."""

import datetime as dt

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.utils import DatabaseError

from billing.models import LedgerEntry

from .. import factories

pytestmark = pytest.mark.django_db


def _refused(sql, params=()):
    with (
        pytest.raises((IntegrityError, InternalError, DatabaseError)) as exc,
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(sql, params)
    return str(exc.value)


@pytest.fixture
def paid(account, catalog, t0):
    order = factories.buy(account, catalog["pro-monthly"], channel="online", now=t0)
    return order


def test_balance_cannot_go_negative(account):
    msg = _refused("UPDATE billing_account SET balance_fen = -1 WHERE id = %s", [account.pk])
    assert "account_balance_not_negative" in msg


def test_ledger_balance_after_not_negative(account, t0):
    msg = _refused(
        "INSERT INTO billing_ledgerentry (account_id, kind, amount_fen, balance_after_fen, channel,"
        " reference, memo, created_at) VALUES (%s, 'top_up', 5, -5, '', '', '', %s)",
        [account.pk, t0],
    )
    assert "ledger_balance_after_not_negative" in msg


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        ("top_up", -5),
        ("top_up", 0),
        ("purchase", 5),
        ("renewal", 5),
        ("refund", -1),
        ("adjustment", 0),
    ],
)
def test_ledger_sign_matches_kind(paid, t0, kind, amount):
    msg = _refused(
        "INSERT INTO billing_ledgerentry (account_id, order_id, kind, amount_fen, balance_after_fen,"
        " channel, reference, memo, created_at) VALUES (%s, %s, %s, %s, 100, '', '', '', %s)",
        [paid.account_id, paid.pk, kind, amount, t0],
    )
    assert "ledger_sign_matches_kind" in msg


def test_ledger_one_charge_per_order(paid, t0):
    msg = _refused(
        "INSERT INTO billing_ledgerentry (account_id, order_id, kind, amount_fen, balance_after_fen,"
        " channel, reference, memo, created_at) VALUES (%s, %s, 'purchase', -1, 0, '', '', '', %s)",
        [paid.account_id, paid.pk, t0],
    )
    assert "ledger_one_charge_per_order" in msg


def test_ledger_update_refused_by_trigger(paid):
    msg = _refused("UPDATE billing_ledgerentry SET amount_fen = 1 WHERE order_id = %s", [paid.pk])
    assert "append-only" in msg


def test_ledger_delete_refused_by_trigger(paid):
    msg = _refused("DELETE FROM billing_ledgerentry WHERE order_id = %s", [paid.pk])
    assert "append-only" in msg


def test_ledger_orm_refuses_update_and_delete(paid):
    entry = LedgerEntry.objects.filter(order=paid).first()
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).update(memo="x")
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()


def test_one_renewal_order_per_subscription_period(paid, t0):
    sub = paid.subscription
    sql = (
        "INSERT INTO billing_order (account_id, package_id, subscription_id, kind, channel, status,"
        " seats, amount_fen, refunded_fen, period_start, period_end, external_reference,"
        " fulfilment_note, created_at, confirmed_at, paid_at, fulfilled_at) VALUES"
        " (%s, %s, %s, 'renewal', 'balance', 'fulfilled', 1, 100, 0, %s, %s, '', '', %s, %s, %s,"
        " %s)"
    )
    start, end = sub.current_period_end, sub.current_period_end + dt.timedelta(days=30)
    params = [sub.account_id, sub.package_id, sub.pk, start, end, t0, t0, t0, t0]
    with connection.cursor() as cur:
        cur.execute(sql, params)
    assert "order_one_renewal_per_period" in _refused(sql, params)


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("amount_fen", 0, "order_amount_positive"),
        ("amount_fen", -100, "order_amount_positive"),
        ("seats", 0, "order_seats_positive"),
        ("refunded_fen", -1, "order_refund_within_paid"),
        ("refunded_fen", 10**9, "order_refund_within_paid"),
    ],
)
def test_order_amount_constraints(paid, column, value, constraint):
    msg = _refused(f"UPDATE billing_order SET {column} = %s WHERE id = %s", [value, paid.pk])
    assert constraint in msg


def test_price_must_be_positive(catalog):
    pv = catalog["pro-monthly"].prices.first()
    assert "price_positive" in _refused(
        "UPDATE billing_priceversion SET amount_fen = 0 WHERE id = %s", [pv.pk]
    )


def test_one_live_subscription_per_account(paid, t0):
    msg = _refused(
        "INSERT INTO billing_subscription (account_id, package_id, status, seats, environments_limit,"
        " auto_renew, notice_deadline_provisional, started_at) VALUES (%s, %s, 'active', 1, 1, false,"
        " false, %s)",
        [paid.account_id, paid.package_id, t0],
    )
    assert "subscription_one_live" in msg


def test_subscription_seats_positive(paid):
    msg = _refused(
        "UPDATE billing_subscription SET seats = 0 WHERE id = %s", [paid.subscription_id]
    )
    assert "subscription_seats_positive" in msg


def test_only_one_free_package(catalog):
    msg = _refused(
        "INSERT INTO billing_package (code, name_en, name_zh, kind, max_seats, environments_limit,"
        " is_active) VALUES ('free2', 'x', 'x', 'free', 1, 1, true)"
    )
    assert "package_one_free" in msg
