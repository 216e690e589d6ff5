"""Issue 19 on PostgreSQL: a bank transfer reported, matched, approved by a
second finance user and credited once (two approvals at once give one
credit); one finance cannot find refused with a reason; one recorded from
the statement by its reference; role boundaries."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connections, transaction

from billing.authz import ActorRefused
from billing.models import Account, LedgerEntry
from billing.policy import SHANGHAI as SH
from transfers import policy, services
from transfers.models import BankTransfer

from .. import factories

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def report(account, amount_fen=50_000, **extra):
    args = {
        "account": account,
        "actor": account.owner,
        "amount_fen": amount_fen,
        "transferred_on": T.date(),
        "remitter_name": "Fuzhou Example Software Co., Ltd.",
        "remitter_account": "6216 6101 0001 2345 678",
        "slip_name": "slip.png",
        "slip_data": PNG,
        "now": T,
    }
    return services.transfer_report(**(args | extra))


@pytest.fixture
def finance2(db):
    return factories.make_staff("finance2", group="finance")


def test_a_small_transfer_is_reported_matched_and_credited(account, finance_user):
    transfer = report(account)
    assert (transfer.status, transfer.slip_type, transfer.remitter_account) == (
        "reported",
        "png",
        "6216610100012345678",
    )
    done = services.transfer_match(
        transfer=transfer,
        actor=finance_user,
        bank_reference="BOC-2025-0001",
        amount_fen=50_000,
        now=T,
    )
    assert done.status == "credited" and done.ledger_entry.amount_fen == 50_000
    entry = LedgerEntry.objects.get(account=account, kind="top_up")
    assert (entry.channel, entry.reference) == ("offline", "BOC-2025-0001")
    assert Account.objects.get(pk=account.pk).balance_fen == 50_000
    assert [h.status for h in done.history.order_by("history_id")] == ["reported", "credited"]


def test_a_large_transfer_waits_for_a_second_different_finance_user(
    account, finance_user, finance2, settings
):
    settings.BANK_TRANSFER_SECOND_APPROVAL_FEN = 100_000
    transfer = report(account, amount_fen=500_000)
    waiting = services.transfer_match(
        transfer=transfer, actor=finance_user, bank_reference="BOC-2", amount_fen=500_000, now=T
    )
    assert waiting.status == "awaiting_second_approval"
    assert not LedgerEntry.objects.filter(account=account).exists()
    with pytest.raises(ValidationError, match="second, different finance user"):
        services.transfer_approve(transfer=waiting, actor=finance_user, now=T)
    done = services.transfer_approve(transfer=waiting, actor=finance2, now=T)
    assert done.status == "credited" and done.second_approved_by == finance2
    assert Account.objects.get(pk=account.pk).balance_fen == 500_000
    with pytest.raises(ValidationError, match="nothing to approve"):
        services.transfer_approve(transfer=done, actor=finance2, now=T)
    assert LedgerEntry.objects.filter(account=account).count() == 1


def test_the_database_refuses_a_second_approval_by_the_matcher(account, finance_user, settings):
    settings.BANK_TRANSFER_SECOND_APPROVAL_FEN = 100
    waiting = services.transfer_match(
        transfer=report(account), actor=finance_user, bank_reference="B3", amount_fen=50_000, now=T
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        BankTransfer.objects.filter(pk=waiting.pk).update(second_approved_by=finance_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        BankTransfer.objects.filter(pk=waiting.pk).update(status="credited")


def test_a_transfer_finance_cannot_find_is_refused_with_a_reason(account, finance_user):
    transfer = report(account)
    with pytest.raises(ValidationError):
        services.transfer_refuse(transfer=transfer, actor=finance_user, reason=" ", now=T)
    done = services.transfer_refuse(
        transfer=transfer,
        actor=finance_user,
        reason="No transfer of ¥500.00 from this account reached us on 3 March.",
        now=T,
    )
    assert done.status == "refused" and "3 March" in done.refusal_reason
    with pytest.raises(ValidationError, match="cannot be matched again"):
        services.transfer_match(
            transfer=done, actor=finance_user, bank_reference="X", amount_fen=50_000, now=T
        )
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_wrong_input_is_refused_and_writes_nothing(account, finance_user):
    with pytest.raises(ValidationError) as caught:
        report(
            account,
            amount_fen=0,
            remitter_name=" ",
            transferred_on=T.date() + dt.timedelta(days=1),
        )
    assert {"amount_fen", "remitter_name", "transferred_on"} <= set(caught.value.message_dict)
    with pytest.raises(ValidationError) as caught:
        report(account, slip_data=b"MZ\x90\x00 an exe")
    assert "PNG or JPEG image or a PDF" in caught.value.message_dict["slip"][0]
    transfer = report(account)
    with pytest.raises(ValidationError, match="The customer reported ¥500.00, not ¥600.00"):
        services.transfer_match(
            transfer=transfer, actor=finance_user, bank_reference="B4", amount_fen=60_000, now=T
        )
    assert BankTransfer.objects.get().status == "reported"
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_a_bank_reference_is_credited_once(account, finance_user):
    services.transfer_match(
        transfer=report(account),
        actor=finance_user,
        bank_reference="BOC-9",
        amount_fen=50_000,
        now=T,
    )
    with pytest.raises(ValidationError, match="already recorded"):
        services.transfer_match(
            transfer=report(account),
            actor=finance_user,
            bank_reference="BOC-9",
            amount_fen=50_000,
            now=T,
        )
    assert LedgerEntry.objects.filter(account=account).count() == 1


def test_recorded_from_the_statement_by_its_reference(account, finance_user):
    reference = policy.transfer_reference(account.pk)
    done = services.transfer_record_from_statement(
        reference=reference.lower(),
        actor=finance_user,
        amount_fen=30_000,
        transferred_on=T.date(),
        remitter_name="Acme Ltd.",
        remitter_account="123",
        bank_reference="STMT-1",
        now=T,
    )
    assert (done.account_id, done.source, done.status) == (account.pk, "statement", "credited")
    typo = reference[:-1] + ("2" if reference[-1] != "2" else "3")
    with pytest.raises(ValidationError, match="is not an account's transfer reference"):
        services.transfer_record_from_statement(
            reference=typo,
            actor=finance_user,
            amount_fen=30_000,
            transferred_on=T.date(),
            remitter_name="Acme Ltd.",
            remitter_account="123",
            bank_reference="STMT-2",
            now=T,
        )
    assert BankTransfer.objects.count() == 1


def test_who_may_do_what(account, finance_user, support_user):
    with pytest.raises(ActorRefused):
        report(account, actor=finance_user)  # staff do not report for a customer
    transfer = report(account)
    with pytest.raises(PermissionDenied):
        services.transfer_match(
            transfer=transfer, actor=support_user, bank_reference="B", amount_fen=50_000, now=T
        )
    with pytest.raises(PermissionDenied):
        services.transfer_refuse(transfer=transfer, actor=support_user, reason="no", now=T)
    with pytest.raises(PermissionDenied):
        services.transfer_approve(transfer=transfer, actor=support_user, now=T)
    with pytest.raises(ActorRefused):
        services.transfer_match(
            transfer=transfer, actor=account.owner, bank_reference="B", amount_fen=50_000, now=T
        )
    assert BankTransfer.objects.get().status == "reported"


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_the_same_moment_credit_once(catalog, agreement, settings):
    """Two other finance users approve the same large transfer at once, each
    on its own thread and database connection: one credit, one refusal."""
    settings.BANK_TRANSFER_SECOND_APPROVAL_FEN = 100
    account = factories.make_account("Race Co", now=T)
    matcher = factories.make_staff("fin-m", group="finance")
    approvers = [factories.make_staff(f"fin-{i}", group="finance") for i in range(2)]
    waiting = services.transfer_match(
        transfer=report(account), actor=matcher, bank_reference="RACE-1", amount_fen=50_000, now=T
    )
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def approve(i):
        try:
            barrier.wait(timeout=30)
            results[i] = services.transfer_approve(transfer=waiting, actor=approvers[i], now=T)
        except Exception as exc:  # asserted on below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    credited = [r for r in results if isinstance(r, BankTransfer)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(credited) == 1 and len(refused) == 1, results
    assert "nothing to approve" in refused[0].messages[0]
    assert LedgerEntry.objects.filter(account=account, kind="top_up").count() == 1
    assert Account.objects.get(pk=account.pk).balance_fen == 50_000
