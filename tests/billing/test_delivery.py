"""P3 fair-use: the paid period starts when the service is delivered
(hardening item 1). Standard packages are delivered by the software in the
payment's transaction; a custom service's period starts when staff fulfil it;
paid orders left unfulfilled too long are listed for staff (E3 candidates)."""

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from billing import services
from billing.models import Order, Subscription
from billing.policy import SHANGHAI
from billing.selectors import orders_awaiting_fulfilment_too_long
from renewals.services import renewal_scan
from tests.adminforms import staff_login

from .. import factories

pytestmark = pytest.mark.django_db

MAR_1 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=SHANGHAI)  # a Saturday
APR_2 = dt.datetime(2025, 4, 2, 15, 0, tzinfo=SHANGHAI)


def _custom_paid(account, catalog, at):
    finance = factories.factory_finance()
    order = services.order_place(
        account=account,
        package=catalog["custom"],
        kind="custom",
        seats=5,
        agreed_amount_fen=300_000,
        actor=finance,
        now=at,
    )
    order = services.order_confirm(order=order, actor=account.owner, now=at)
    return services.order_pay(
        order=order, channel="other", reference=f"deal {order.pk}", actor=finance, now=at
    )


def test_standard_order_is_delivered_at_payment(account, catalog):
    factories.provider_top_up(account, 9_900, now=MAR_1)
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=MAR_1
    )
    order = services.order_confirm(order=order, actor=account.owner, now=MAR_1)
    order = services.order_pay(order=order, channel="balance", actor=account.owner, now=MAR_1)
    # Paid and delivered in one transaction: the period starts at payment.
    assert order.status == "fulfilled"
    assert order.paid_at == order.fulfilled_at == order.period_start == MAR_1
    sub = order.subscription
    assert (sub.status, sub.current_period_start) == ("active", MAR_1)
    assert sub.current_period_end == dt.datetime(2025, 4, 1, 10, 0, tzinfo=SHANGHAI)
    assert sub.notice_deadline is not None


def test_custom_period_starts_when_staff_fulfil_it(account, catalog, finance_user):
    """Paid 03-01, fulfilled 04-02: the three-month period runs from 04-02, so
    the next scan charges nothing (today it would renew a period with no
    day of service)."""
    order = _custom_paid(account, catalog, MAR_1)
    assert (order.status, order.period_start, order.period_end) == ("paid", None, None)
    order = services.order_fulfil(order=order, actor=finance_user, note="5 seats", now=APR_2)
    assert order.period_start == APR_2
    assert order.period_end == dt.datetime(2025, 7, 2, 15, 0, tzinfo=SHANGHAI)
    sub = Subscription.objects.get(pk=order.subscription_id)
    assert (sub.current_period_start, sub.current_period_end) == (APR_2, order.period_end)
    run = renewal_scan(at=APR_2 + dt.timedelta(minutes=5), trigger="command")
    assert (run.due, run.renewed) == (0, 0)
    assert not Order.objects.filter(kind="renewal").exists()


def test_database_refuses_a_standard_order_left_paid(account, catalog):
    order = factories.buy(account, catalog["pro-monthly"], now=MAR_1, channel="online")
    refused = pytest.raises(IntegrityError, match="order_only_custom_awaits_fulfilment")
    with refused, transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_order SET status = 'paid', fulfilled_at = NULL,"
            " period_start = NULL, period_end = NULL WHERE id = %s",
            [order.pk],
        )


def test_database_refuses_a_period_before_delivery(account, catalog):
    order = _custom_paid(account, catalog, MAR_1)
    refused = pytest.raises(IntegrityError, match="order_period_only_when_fulfilled")
    with refused, transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_order SET period_start = paid_at,"
            " period_end = paid_at + interval '90 days' WHERE id = %s",
            [order.pk],
        )


@pytest.mark.parametrize(
    ("paid", "now", "listed"),
    [
        # Fri 10:00 + 2 working days = Tue 10:00.
        (dt.datetime(2025, 3, 7, 10, 0), dt.datetime(2025, 3, 11, 9, 59), False),
        (dt.datetime(2025, 3, 7, 10, 0), dt.datetime(2025, 3, 11, 10, 0), True),
        # Paid Mon 2025-09-29; 1-8 October are the National Day holiday: Tue
        # 09-30 is the 1st working day after it, Thu 10-09 the 2nd.
        (dt.datetime(2025, 9, 29, 12, 0), dt.datetime(2025, 10, 8, 23, 0), False),
        (dt.datetime(2025, 9, 29, 12, 0), dt.datetime(2025, 10, 9, 12, 0), True),
    ],
)
def test_paid_orders_unfulfilled_for_two_working_days_are_listed(
    account, catalog, paid, now, listed
):
    paid, now = paid.replace(tzinfo=SHANGHAI), now.replace(tzinfo=SHANGHAI)
    order = _custom_paid(account, catalog, paid)
    found = orders_awaiting_fulfilment_too_long(now=now)
    assert (order in found) is listed


def test_the_setting_changes_the_delay(account, catalog):
    order = _custom_paid(account, catalog, dt.datetime(2025, 3, 7, 10, 0, tzinfo=SHANGHAI))
    at = dt.datetime(2025, 3, 10, 10, 0, tzinfo=SHANGHAI)  # Mon: 1 working day later
    assert order not in orders_awaiting_fulfilment_too_long(now=at)
    with override_settings(FULFILMENT_DUE_WORKING_DAYS=1):
        assert order in orders_awaiting_fulfilment_too_long(now=at)


def test_admin_index_lists_them_for_finance(client, account, catalog, finance_user):
    order = _custom_paid(account, catalog, dt.datetime(2025, 3, 7, 10, 0, tzinfo=SHANGHAI))
    staff_login(client, finance_user)
    with time_machine.travel(dt.datetime(2025, 3, 12, 10, 0, tzinfo=SHANGHAI), tick=False):
        body = client.get("/admin/").content.decode()
    assert 'id="orders-awaiting-fulfilment"' in body
    assert f"/admin/billing/order/{order.pk}/change/" in body
    services.order_fulfil(order=order, actor=finance_user, note="done", now=None)
    with time_machine.travel(dt.datetime(2025, 3, 12, 10, 5, tzinfo=SHANGHAI), tick=False):
        assert 'id="orders-awaiting-fulfilment"' not in client.get("/admin/").content.decode()
