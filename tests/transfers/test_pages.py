"""Issue 19: bank transfers on the account pages and in finance's queue.
The customer sees the receiving account and their reference, reports a
transfer with the slip, and sees its state (the refusal's reason); support
reads the queue and gets 403; finance matches, a second finance user
approves, and the balance is credited once; "Add" records one from the
statement."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import Account, LedgerEntry
from tests.accounts.service_helpers import form_fields
from tests.adminforms import money_post, staff_login
from transfers import policy, services
from transfers.models import BankTransfer

from .. import factories

pytestmark = pytest.mark.django_db

URL = "/account/transfers/"
LIST = "/admin/transfers/banktransfer/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _report(client, **extra):
    data = {
        "amount": "2,000.00",
        "transferred_on": "2025-03-03",
        "remitter_name": "Acme Software Co., Ltd.",
        "remitter_account": "6216610100012345678",
        "slip": SimpleUploadedFile("slip.png", PNG, content_type="image/png"),
    } | extra
    return client.post(URL, {**form_fields(client, URL), **data})


def test_the_customer_reports_a_transfer_and_sees_its_state(client, account, settings):
    settings.BANK_ACCOUNT_NUMBER = "4096 1111 2222"
    client.force_login(account.owner)
    page = client.get(URL).content.decode()
    assert "4096 1111 2222" in page and policy.transfer_reference(account.pk) in page
    response = _report(client)
    assert response.status_code == 302
    transfer = BankTransfer.objects.get()
    assert (transfer.amount_fen, transfer.slip_type, transfer.account_id) == (
        200_000,
        "png",
        account.pk,
    )
    listing = client.get(URL).content.decode()
    assert "Reported, to be found" in listing and "¥2,000.00" in listing
    services.transfer_refuse(
        transfer=transfer,
        actor=factories.factory_finance(),
        reason="Nothing arrived on 3 March from this account.",
    )
    listing = client.get(URL).content.decode()
    assert "Refused" in listing and "Nothing arrived on 3 March" in listing


def test_a_wrong_slip_is_refused_on_the_form_and_nothing_is_written(client, account):
    client.force_login(account.owner)
    response = _report(
        client, slip=SimpleUploadedFile("slip.exe", b"MZ\x90\x00", content_type="image/png")
    )
    assert response.status_code == 200
    assert "PNG or JPEG image or a PDF" in response.content.decode()
    assert not BankTransfer.objects.exists()


def test_in_chinese(client, account):
    client.force_login(account.owner)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": URL})
    page = client.get(URL).content.decode()
    assert "对公转账付款" in page and "您的转账识别码" in page


def test_a_plain_member_reads_but_does_not_report(client, account, t0):
    from billing.models import AccountMember

    member = factories.make_user()
    AccountMember.objects.create(account=account, user=member, role="member", added_at=t0)
    client.force_login(member)
    assert client.get(URL).status_code == 200
    assert client.post(URL, {"amount": "1"}).status_code == 403
    assert not BankTransfer.objects.exists()


@pytest.fixture
def reported(account):
    return services.transfer_report(
        account=account,
        actor=account.owner,
        amount_fen=2_000_000,
        transferred_on=dt.date(2025, 3, 3),
        remitter_name="Acme Software Co., Ltd.",
        remitter_account="6216610100012345678",
        slip_name="slip.png",
        slip_data=PNG,
    )


def urls(obj):
    return {
        n: reverse(f"admin:transfers_{n}", args=[obj.pk]) for n in ("match", "approve", "refuse")
    }


def test_support_reads_the_queue_but_gets_403(client, reported, support_user):
    staff_login(client, support_user)
    listing = client.get(LIST, {"queue": "find"}).content.decode()
    assert f">{reported.pk}<" in listing
    assert client.get(LIST + "add/").status_code == 403
    page = client.get(reverse("admin:transfers_banktransfer_change", args=[reported.pk]))
    assert page.status_code == 200
    for url in urls(reported).values():
        assert url not in page.content.decode()
        assert client.get(url).status_code == 403
        assert client.post(url, {"bank_reference": "X", "amount": "20000"}).status_code == 403
    assert client.get(reverse("admin:transfers_slip", args=[reported.pk])).content == PNG
    reported.refresh_from_db()
    assert reported.status == "reported"


def test_finance_matches_a_second_finance_user_approves_credited_once(
    client, reported, finance_user, settings
):
    settings.BANK_TRANSFER_SECOND_APPROVAL_FEN = 1_000_000
    staff_login(client, finance_user)
    done = money_post(
        client,
        urls(reported)["match"],
        {"bank_reference": "BOC-77", "amount": "20000"},
        follow=True,
    )
    assert "a second, different finance user approves it" in done.content.decode()
    reported.refresh_from_db()
    assert reported.status == "awaiting_second_approval"
    assert not LedgerEntry.objects.filter(account=reported.account).exists()
    # The matcher may not approve it.
    mine = money_post(client, urls(reported)["approve"], {})
    assert "a second, different finance user must approve it" in mine.content.decode()

    client.logout()
    second = factories.make_staff("finance-second", group="finance")
    staff_login(client, second)
    assert f">{reported.pk}<" in client.get(LIST, {"queue": "second"}).content.decode()
    done = money_post(client, urls(reported)["approve"], {}, follow=True)
    assert "credited: ¥20,000.00" in done.content.decode()
    assert Account.objects.get(pk=reported.account_id).balance_fen == 2_000_000
    assert LedgerEntry.objects.filter(kind="top_up", reference="BOC-77").count() == 1


def test_finance_records_one_from_the_statement(client, account, finance_user):
    staff_login(client, finance_user)
    listing = client.get(LIST).content.decode()
    assert LIST + "add/" in listing
    done = money_post(
        client,
        LIST + "add/",
        {
            "reference": policy.transfer_reference(account.pk),
            "amount": "300",
            "transferred_on": "2025-03-03",
            "remitter_name": "Acme",
            "remitter_account": "123",
            "bank_reference": "STMT-9",
        },
        follow=True,
    )
    assert "credited: ¥300.00" in done.content.decode()
    assert BankTransfer.objects.get().source == "statement"
    assert Account.objects.get(pk=account.pk).balance_fen == 30_000
