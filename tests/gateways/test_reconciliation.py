"""Daily reconciliation with the providers' statements (issue 18), on
PostgreSQL, against the local fake gateways: a statement import finds each
kind of mismatch (paid there not here, here not there, amounts that differ,
refunds on either side only) with the day's totals on both sides; importing
the same file again changes nothing; finance resolves each line, recording
it through the once-only gate (on the provider's authenticated answer) or
explaining it with a reason, audited; support can do none of it."""

from __future__ import annotations

import datetime as dt
import urllib.request

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone, translation

from billing import services
from billing.models import Account, LedgerEntry, OnlinePayment
from core.time import SHANGHAI
from gateways import reconciliation
from gateways.alipay import AlipayProvider
from gateways.models import (
    Mismatch,
    ProviderMessage,
    ProviderRefund,
    ReconciledDay,
    StatementImport,
    StatementLine,
)
from gateways.reconcile import check_provider_money
from refunds import services as refunds
from refunds.models import RefundRequest
from tests.adminforms import money_post, staff_login

from .fakes import alipay_statement, wechatpay_bill
from .test_refunds import paid_online

pytestmark = pytest.mark.django_db(transaction=True)

# A Beijing morning: nothing in a test crosses midnight, whenever CI runs it.
MORNING = dt.datetime(2026, 12, 8, 10, 0, tzinfo=SHANGHAI)
DAY = MORNING.date()
LINES = reverse("admin:gateways_mismatch_changelist")


@pytest.fixture(autouse=True)
def _morning_in_english():
    with time_machine.travel(MORNING, tick=True), translation.override("en"):
        yield


def paid(alipay, account, fen: int, *, notify: bool = True) -> OnlinePayment:
    payment = services.online_payment_start(
        account=account, provider="alipay", amount_fen=fen, actor=account.owner
    )
    urllib.request.urlopen(AlipayProvider().start(payment, language="en").url, timeout=10).close()
    alipay.pay(payment.reference)
    if notify:
        assert alipay.notify(payment.reference) == (200, "success")
    return payment


def balance(account) -> int:
    return Account.objects.get(pk=account.pk).balance_fen


def lines() -> set[tuple[str, str, int | None, int | None, str]]:
    return {
        (m.kind, m.refund_reference or m.reference, m.there_fen, m.here_fen, m.status)
        for m in Mismatch.objects.all()
    }


def counts() -> tuple[int, ...]:
    return (
        StatementImport.objects.count(),
        StatementLine.objects.count(),
        Mismatch.objects.count(),
        Mismatch.history.count(),
        ReconciledDay.history.count(),
        LedgerEntry.objects.count(),
    )


def test_an_alipay_statement_finds_each_payment_mismatch_and_again_changes_nothing(
    alipay, account, tmp_path
):
    ok = paid(alipay, account, 10_000)
    lost = paid(alipay, account, 20_000, notify=False)  # the notification never came
    other = paid(alipay, account, 30_000)
    absent = paid(alipay, account, 40_000)
    data = alipay_statement(
        alipay,
        DAY,
        omit=(absent.reference,),
        amounts={other.reference: "301.00"},
        extra=(("ALIPAY-NOT-OURS", "5.00"),),
    )
    path = tmp_path / "20881234_20261208_业务明细.csv"
    path.write_bytes(data)

    call_command("import_statement", "alipay", str(path), stdout=(out := _Out()))
    assert "Alipay statement of 2026-12-08 imported: 4 money rows, 4 new" in out.text
    assert "4 reconciliation line(s) open" in out.text
    assert lines() == {
        ("paid_there", lost.reference, 20_000, None, "open"),
        ("amount", other.reference, 30_100, 30_000, "open"),
        ("here_only", absent.reference, None, 40_000, "open"),
        ("paid_there", "ALIPAY-NOT-OURS", 500, None, "open"),
    }
    assert Mismatch.objects.get(reference=lost.reference).payment == lost
    assert Mismatch.objects.get(reference="ALIPAY-NOT-OURS").payment is None
    assert not Mismatch.objects.filter(reference=ok.reference).exists()
    day = ReconciledDay.objects.get(provider="alipay", day=DAY)
    assert (day.there_payments, day.there_payments_fen) == (4, 10_000 + 20_000 + 30_100 + 500)
    assert (day.here_payments, day.here_payments_fen) == (3, 10_000 + 30_000 + 40_000)
    assert (day.there_refunds, day.here_refunds) == (0, 0)

    # The same file again, from the command and from the service: nothing changes.
    before = counts()
    call_command("import_statement", "alipay", str(path), stdout=(again := _Out()))
    assert "already imported" in again.text and "nothing changed" in again.text
    result = reconciliation.statement_import(provider="alipay", data=data, actor=None)
    assert result.created is False
    assert counts() == before
    # A second download of the same day (another export time): its rows are
    # not stored twice.
    redownload = alipay_statement(
        alipay,
        DAY,
        omit=(absent.reference,),
        amounts={other.reference: "301.00"},
        extra=(("ALIPAY-NOT-OURS", "5.00"),),
        exported="17:40:00",
    )
    assert redownload != data
    second = reconciliation.statement_import(provider="alipay", data=redownload, actor=None)
    assert (second.created, second.statement.rows, second.statement.new_rows) == (True, 4, 0)
    assert StatementLine.objects.count() == 4
    assert Mismatch.objects.count() == 4


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_a_lost_payment_listed_there_clears_when_its_notification_arrives(alipay, account):
    lost = paid(alipay, account, 20_000, notify=False)
    reconciliation.statement_import(
        provider="alipay", data=alipay_statement(alipay, DAY), actor=None
    )
    line = Mismatch.objects.get()
    assert (line.kind, line.status) == ("paid_there", "open")
    assert alipay.notify(lost.reference) == (200, "success")  # late, but before its expiry
    reconciliation.day_reconcile(provider="alipay", day=DAY)
    line.refresh_from_db()
    assert line.status == "cleared"
    assert [h.status for h in line.history.order_by("history_id")] == ["open", "cleared"]
    assert ReconciledDay.objects.get().here_payments_fen == 20_000


def test_finance_records_and_explains_from_the_admin_and_support_cannot(
    alipay, client, account, finance_user, support_user
):
    lost = paid(alipay, account, 20_000, notify=False)
    data = alipay_statement(alipay, DAY, extra=(("ALIPAY-NOT-OURS", "5.00"),))

    staff_login(client, support_user)
    assert client.get(LINES).status_code == 403
    assert client.get(reverse("admin:gateways_statementimport_add")).status_code == 403
    with pytest.raises(ValidationError, match="permission"):
        reconciliation.statement_import(provider="alipay", data=data, actor=support_user)
    assert not StatementImport.objects.exists()
    client.logout()

    staff_login(client, finance_user)
    add = reverse("admin:gateways_statementimport_add")
    upload = money_post(
        client,
        add,
        {"provider": "alipay", "file": SimpleUploadedFile("alipay.csv", data), "day": ""},
        follow=True,
    )
    assert "2 reconciliation line(s) open" in upload.content.decode()
    statement = StatementImport.objects.get()
    assert (statement.imported_by, statement.day, statement.filename) == (
        finance_user,
        DAY,
        "alipay.csv",
    )
    days = client.get(reverse("admin:gateways_reconciledday_changelist"))
    assert "¥205.00" in days.content.decode()  # the provider's side of the day

    # Record the lost payment through the gate: the provider is asked, once.
    line = Mismatch.objects.get(reference=lost.reference)
    post = {"action": "record_action", "_selected_action": [line.pk]}
    answer = client.post(LINES, post, follow=True)
    assert "1 line(s) recorded through the gate" in answer.content.decode()
    assert balance(account) == 20_000
    line.refresh_from_db()
    assert (line.status, line.resolved_by) == ("recorded", finance_user)
    assert ProviderMessage.objects.filter(
        payment=lost, kind="query", verified=True, outcome="recorded"
    ).exists()
    assert check_provider_money() == []
    # Pressed again: refused, nothing more.
    again = client.post(LINES, post, follow=True)
    assert "already recorded through the gate" in again.content.decode()
    assert balance(account) == 20_000

    # The reference this system never started cannot be recorded: explain it.
    stranger = Mismatch.objects.get(reference="ALIPAY-NOT-OURS")
    refused = client.post(
        LINES, {"action": "record_action", "_selected_action": [stranger.pk]}, follow=True
    )
    assert "Explain it instead" in refused.content.decode()
    explain = reverse("admin:gateways_mismatch_explain", args=[stranger.pk])
    empty = money_post(client, explain, {"reason": "  "})
    assert empty.status_code == 200 and b"errornote" in empty.content
    stranger.refresh_from_db()
    assert stranger.status == "open"
    done = money_post(client, explain, {"reason": "支付宝测试交易，已退回"}, follow=True)
    assert "explained" in done.content.decode()
    stranger.refresh_from_db()
    assert (stranger.status, stranger.reason, stranger.resolved_by) == (
        "explained",
        "支付宝测试交易，已退回",
        finance_user,
    )
    last = stranger.history.latest("history_id")
    assert last.history_user == finance_user and "Explained" in last.history_change_reason
    assert balance(account) == 20_000
    with pytest.raises(ValidationError, match="permission"):
        reconciliation.mismatch_explain(mismatch=line, actor=support_user, reason="x")


def test_wechat_pay_refunds_on_either_side_only_and_the_one_there_is_recorded(
    wechatpay, account, finance_user
):
    later = timezone.now() + dt.timedelta(days=30)  # the custom services are long overdue
    approved = []
    for fen in (5_000, 3_000):
        order, _payment = paid_online(account, "wechatpay", wechatpay, fen)
        asked = refunds.refund_request(
            order=order, actor=account.owner, reason="", channel="account_page", now=later
        )
        approved.append(
            refunds.refund_approve(request=asked, actor=finance_user, justification="E3", now=later)
        )
    # The first refund is made at WeChat Pay, but its answer is too late here.
    wechatpay.hang_next_refund = 8.0
    refunds.refund_pay_out_to_origin(request=approved[0], actor=finance_user, now=later)
    pending = ProviderRefund.objects.get(amount_fen=5_000)
    assert pending.status == "sending"
    # The second is refunded and paid out, but the bill omits it.
    refunds.refund_pay_out_to_origin(request=approved[1], actor=finance_user, now=later)
    done = ProviderRefund.objects.get(amount_fen=3_000)
    assert done.status == "succeeded"

    refund_day = later.astimezone(SHANGHAI).date()
    bill = wechatpay_bill(wechatpay, refund_day, payments=False, omit=(done.reference,))
    result = reconciliation.statement_import(provider="wechatpay", data=bill, actor=finance_user)
    assert result.statement.day == refund_day  # the bill's rows name its day
    assert lines() == {
        ("refund_there", pending.reference, 5_000, None, "open"),
        ("refund_here", done.reference, None, 3_000, "open"),
    }
    day = ReconciledDay.objects.get(provider="wechatpay", day=refund_day)
    assert (day.there_refunds, day.there_refunds_fen) == (1, 5_000)
    assert (day.here_refunds, day.here_refunds_fen) == (1, 3_000)

    line = Mismatch.objects.get(kind="refund_there")
    recorded = reconciliation.mismatch_record(mismatch=line, actor=finance_user, now=later)
    assert recorded.status == "recorded"
    pending.refresh_from_db()
    assert pending.status == "succeeded"
    assert len(wechatpay.refunds) == 2  # asked, never refunded twice
    # The ledger's payout follows from the beat's settlement, once.
    assert refunds.provider_refunds_settle(now=later + dt.timedelta(minutes=5)) == 1
    assert RefundRequest.objects.get(pk=approved[0].pk).status == "paid_out"
    assert check_provider_money() == []


def test_a_bad_file_is_refused_with_a_reason_and_writes_nothing(alipay, account, tmp_path):
    paid(alipay, account, 10_000)
    good = alipay_statement(alipay, DAY)
    cases = [
        ("alipay", good.decode("gbk").encode("utf-8"), "not in GBK"),
        ("alipay", b"no,header,here\n1,2,3\n", "is missing"),
        ("wechatpay", good, "not UTF-8|is missing"),
        ("paypal", good, "Unknown provider"),
        ("alipay", b"", "empty"),
    ]
    for provider, data, message in cases:
        with pytest.raises(ValidationError, match=message):
            reconciliation.statement_import(provider=provider, data=data, actor=None)
    # A bill that names no day and has no rows: which day is it?
    with pytest.raises(ValidationError, match="Say which day"):
        reconciliation.statement_import(
            provider="wechatpay", data=wechatpay_bill(_NoTrades(), DAY), actor=None
        )
    # A row that contradicts one imported earlier refuses the whole file.
    reconciliation.statement_import(provider="alipay", data=good, actor=None)
    before = counts()
    ref = next(iter(alipay.trades))
    changed = alipay_statement(alipay, DAY, amounts={ref: "99.00"}, exported="18:00:00")
    with pytest.raises(ValidationError, match="imported earlier lists it as"):
        reconciliation.statement_import(provider="alipay", data=changed, actor=None)
    assert counts() == before
    path = tmp_path / "bill.csv"
    path.write_bytes(changed)
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_statement", "alipay", str(path))
    with pytest.raises(CommandError, match="is not a date"):
        call_command("import_statement", "alipay", str(path), "--day", "08/12/2026")
    with pytest.raises(CommandError, match="is not a file"):
        call_command("import_statement", "alipay", str(tmp_path / "missing.csv"))
    assert counts() == before


class _NoTrades:
    APPID, MCHID = "wx0000000000000001", "1900000001"
    trades: dict = {}
    refunds: dict = {}
