"""Issue 19: the month close on a hand-computed example (April 2025,
Shanghai time): an annual package paid mid-month, a renewal, a refund and
top-ups; the exports carry the page's numbers; it adds up; finance opens
the page and support does not."""

from __future__ import annotations

import csv
import datetime as dt
import io
from fractions import Fraction

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from billing.policy import SHANGHAI as SH
from books import services
from notices.services import notice_give
from refunds import services as refund_services
from refunds.models import RefundRequest
from refunds.services import detect_exceptions
from renewals.services import renew_subscriptions
from tests.adminforms import staff_login

from .. import factories

pytestmark = pytest.mark.django_db

APRIL = dt.date(2025, 4, 1)
DAY = 86_400
HOUR = 3_600


def _fen(x: Fraction) -> int:
    """Round half up to the fen, as the month close does."""
    return int(x + Fraction(1, 2)) if x >= 0 else -int(-x + Fraction(1, 2))


@pytest.fixture
def april(catalog, agreement, finance_user):
    """R buys the monthly package on 3 March 10:00 (100.00 topped up online),
    renews on 3 April 10:00, gave notice by email on 28 March: the renewal is
    refunded to the balance on 10 April (E1); R tops up 50.00 on 20 April.
    Y tops up 990.00 online and buys the annual package on 16 April 00:00."""
    r = factories.make_account(
        "R Co", now=dt.datetime(2025, 3, 3, 10, tzinfo=SH), balance_fen=20_000
    )
    first = factories.buy(r, catalog["pro-monthly"], now=dt.datetime(2025, 3, 3, 10, tzinfo=SH))
    renew_subscriptions(
        subscription_ids=[first.subscription_id], at=dt.datetime(2025, 4, 3, 10, tzinfo=SH)
    )
    notice_give(
        account=r,
        subscription=first.subscription,
        channel="email",
        received_at=dt.datetime(2025, 3, 28, 9, tzinfo=SH),
        reference="MAIL-B1",
        actor=factories.make_staff("support-b", group="support"),
        now=dt.datetime(2025, 4, 10, 10, tzinfo=SH),
    )
    at = dt.datetime(2025, 4, 10, 11, tzinfo=SH)
    assert detect_exceptions(at=at) == 1
    refund = refund_services.refund_approve(
        request=RefundRequest.objects.get(), actor=finance_user, justification="E1", now=at
    )
    refund_services.refund_pay_out(
        request=refund, actor=finance_user, method="balance", reference="", now=at
    )
    factories.provider_top_up(r, 5_000, now=dt.datetime(2025, 4, 20, 9, tzinfo=SH))
    y_at = dt.datetime(2025, 4, 16, 0, tzinfo=SH)
    y = factories.make_account("Y Co", now=y_at, balance_fen=99_000)
    factories.buy(y, catalog["pro-annual"], now=y_at)
    return {"r": r, "y": y, "first": first}


def test_the_month_close_equals_the_hand_computation(april):
    close = services.month_close(APRIL)
    # Earned by 1 April 00:00: R's first month, 3 March 10:00 to 3 April
    # 10:00 (31 days), 28 days 14 hours in.
    first_by_april = Fraction(9_900 * (28 * DAY + 14 * HOUR), 31 * DAY)
    # Earned by 1 May 00:00: the first month whole; the renewal, 3 April
    # 10:00 to 3 May 10:00 (30 days), 27 days 14 hours in; the annual
    # package, 16 April to 16 April 2026 (365 days), 15 days in.
    renewal_by_may = Fraction(9_900 * (27 * DAY + 14 * HOUR), 30 * DAY)
    annual_by_may = Fraction(99_000 * 15, 365)
    earned_start = _fen(first_by_april)
    earned_end = _fen(9_900 + renewal_by_may + annual_by_may)
    assert close.revenue_fen == earned_end - earned_start
    # By hand: 9,900 x 2,469,600 / 2,678,400 = 9,128.23 -> 9,128 at the start;
    # 9,900 + 9,900 x 2,383,200 / 2,592,000 (9,102.50) + 99,000 x 15 / 365
    # (4,068.49) = 23,070.99 -> 23,071 at the end.
    assert (earned_start, earned_end, close.revenue_fen) == (9_128, 23_071, 13_943)
    assert close.received_by_channel == {"online": 99_000 + 5_000}
    assert close.received_fen == 104_000
    assert close.charged_fen == 9_900 + 99_000  # the renewal and the annual package
    assert close.refunds_fen == 9_900 and close.payouts_fen == 0
    # Deferred: paid minus earned. 1 April: the first month's rest; 1 May:
    # the renewal's and the annual package's rest.
    assert close.deferred_start_fen == 9_900 - earned_start == 772
    assert close.deferred_end_fen == (9_900 * 2 + 99_000) - earned_end == 95_729
    # Balances held: R 200.00 - 99.00 at the start; at the end R's 200.00
    # - 99.00 - 99.00 + 99.00 + 50.00 and Y's 990.00 - 990.00.
    assert close.balances_start_fen == 10_100
    assert close.balances_end_fen == 10_100 + 5_000
    assert close.problems() == []


def test_the_exports_carry_the_pages_numbers(client, april, finance_user, tmp_path):
    staff_login(client, finance_user)
    url = reverse("admin:books_monthclose_changelist")
    page = client.get(url, {"month": "2025-04"})
    assert page.status_code == 200
    body = page.content.decode()
    close = services.month_close(APRIL)
    assert "It adds up" in body
    rows = {
        row["key"]: row
        for row in csv.DictReader(
            io.StringIO(
                b"".join(
                    client.get(url, {"month": "2025-04", "export": "close"}).streaming_content
                ).decode()
            )
        )
    }
    assert int(rows["revenue"]["amount_fen"]) == close.revenue_fen
    assert int(rows["received_online"]["amount_fen"]) == 104_000
    from billing.admin.base import yuan

    for key in ("revenue", "deferred_end", "balances_end"):
        assert yuan(int(rows[key]["amount_fen"])) in body
    ledger = list(
        csv.DictReader(
            io.StringIO(
                b"".join(
                    client.get(url, {"month": "2025-04", "export": "ledger"}).streaming_content
                ).decode()
            )
        )
    )
    assert sum(int(r["amount_fen"]) for r in ledger) == close.balances_change_fen
    # The command writes the same files.
    call_command("export_books", "2025-04", "--out", str(tmp_path))
    written = list(csv.DictReader((tmp_path / "close-2025-04.csv").open(encoding="utf-8")))
    assert {r["key"]: r["amount_fen"] for r in written} == {
        k: r["amount_fen"] for k, r in rows.items()
    }
    assert len(list(csv.DictReader((tmp_path / "ledger-2025-04.csv").open()))) == len(ledger)
    # XLSX: the same rows, numbers as numbers, from the page and the command.
    from openpyxl import load_workbook

    response = client.get(url, {"month": "2025-04", "export": "close", "format": "xlsx"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == ("month", "key", "label", "amount_yuan", "amount_fen")
    assert {row[1]: row[4] for row in values[1:]} == {
        k: int(r["amount_fen"]) for k, r in rows.items()
    }
    ledger_book = load_workbook(tmp_path / "ledger-2025-04.xlsx").active
    assert ledger_book.max_row == len(ledger) + 1

    # Orders, refunds and fapiao of the month: the same money as the page.
    def exported(name):
        body = b"".join(
            client.get(url, {"month": "2025-04", "export": name}).streaming_content
        ).decode()
        return list(csv.DictReader(io.StringIO(body)))

    orders = exported("orders")
    assert sum(int(r["amount_fen"]) for r in orders) == close.charged_fen
    refunds = exported("refunds")
    assert [int(r["amount_fen"]) for r in refunds] == [close.refunds_fen]
    assert refunds[0]["exception"] == "E1"
    assert exported("fapiao") == []
    for name in ("orders", "refunds", "fapiao"):
        assert (tmp_path / f"{name}-2025-04.csv").exists()
        assert (tmp_path / f"{name}-2025-04.xlsx").exists()
    call_command("check_books", "2025-03", "2025-04")


def test_bad_input_gets_a_clear_error(client, finance_user, tmp_path):
    with pytest.raises(CommandError, match="is not a month"):
        call_command("export_books", "April", "--out", str(tmp_path))
    staff_login(client, finance_user)
    page = client.get(reverse("admin:books_monthclose_changelist"), {"month": "2025-13"})
    assert page.status_code == 200 and "Give the month as YYYY-MM" in page.content.decode()


def test_support_may_not_open_the_books(client, support_user):
    staff_login(client, support_user)
    assert client.get(reverse("admin:books_monthclose_changelist")).status_code == 403


def test_the_set_based_queries_are_few(april, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        services.month_close(APRIL)


def test_check_ledger_also_checks_the_books(account, catalog, t0):
    """A fapiao above what its order was paid minus refunded is a ledger
    violation (issue 19), found by check_ledger as by check_books."""
    from billing.reconcile import reconcile
    from invoicing.models import FapiaoLine
    from invoicing.services import fapiao_issue

    factories.provider_top_up(account, 9_900, now=t0)
    order = factories.buy(account, catalog["pro-monthly"], now=t0)
    fapiao = fapiao_issue(
        fapiao=factories.fapiao_ask(account, [order], now=t0),
        actor=factories.factory_finance(),
        number="12349999",
        issued_on=t0.date(),
        file_name="f.pdf",
        file_data=factories.FAPIAO_PDF,
        now=t0,
    )
    assert reconcile().violations == []
    FapiaoLine.objects.filter(request=fapiao).update(amount_fen=10_000)
    assert reconcile().violations == [
        f"fapiao request #{fapiao.pk}: order #{order.pk} invoiced above what was paid minus "
        "refunded"
    ]
    with pytest.raises(CommandError, match="1 problem"):
        call_command("check_books", "2025-03")
