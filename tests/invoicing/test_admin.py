"""Issue 19 (P3): finance's fapiao queue in the admin. Support reads it but
may not issue or refuse (no buttons, 403 on the pages); finance issues with
the number, date and uploaded file, or refuses with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from billing.policy import SHANGHAI as SH
from invoicing.models import FapiaoRequest
from outbox.models import Email
from tests.adminforms import money_post, staff_login

from .. import factories
from ..factories import FAPIAO_PDF, fapiao_ask

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=SH)
LIST = "/admin/invoicing/fapiaorequest/"


@pytest.fixture
def fapiao(account, catalog):
    factories.provider_top_up(account, 9_900, now=T)
    order = factories.buy(account, catalog["pro-monthly"], now=T)
    return fapiao_ask(account, [order], now=T, kind="special")


def urls(obj):
    return {name: reverse(f"admin:invoicing_{name}", args=[obj.pk]) for name in ("issue", "refuse")}


def test_support_reads_the_queue_but_gets_403(client, fapiao, support_user):
    staff_login(client, support_user)
    listing = client.get(LIST, {"queue": "waiting"})
    assert listing.status_code == 200 and f">{fapiao.pk}<" in listing.content.decode()
    page = client.get(reverse("admin:invoicing_fapiaorequest_change", args=[fapiao.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "6216610100012345678" in body
    for url in urls(fapiao).values():
        assert url not in body
        assert client.get(url).status_code == 403
        assert client.post(url, {"reason": "x", "number": "12345678"}).status_code == 403
    fapiao.refresh_from_db()
    assert fapiao.status == "requested" and fapiao.history.count() == 1


def test_finance_issues_with_the_file(client, fapiao, finance_user):
    staff_login(client, finance_user)
    page = client.get(reverse("admin:invoicing_fapiaorequest_change", args=[fapiao.pk]))
    assert urls(fapiao)["issue"] in page.content.decode()
    form = client.get(urls(fapiao)["issue"]).content.decode()
    assert 'enctype="multipart/form-data"' in form
    # A wrong file: refused on the form, nothing written.
    bad = money_post(
        client,
        urls(fapiao)["issue"],
        {
            "number": "12345678",
            "issued_on": "2025-03-04",
            "file": SimpleUploadedFile("f.pdf", b"not a pdf", content_type="application/pdf"),
        },
    )
    assert bad.status_code == 200 and "neither a PDF nor an OFD" in bad.content.decode()
    fapiao.refresh_from_db()
    assert fapiao.status == "requested"
    done = money_post(
        client,
        urls(fapiao)["issue"],
        {
            "number": "12345678",
            "issued_on": timezone.localdate().isoformat(),
            "file": SimpleUploadedFile("fapiao.pdf", FAPIAO_PDF, content_type="application/pdf"),
        },
        follow=True,
    )
    assert "Fapiao 12345678 issued" in done.content.decode()
    fapiao.refresh_from_db()
    assert (fapiao.status, fapiao.number, bytes(fapiao.file_data)) == (
        "issued",
        "12345678",
        FAPIAO_PDF,
    )
    assert Email.objects.filter(kind="fapiao").count() == 1
    download = client.get(reverse("admin:invoicing_file", args=[fapiao.pk]))
    assert download.status_code == 200 and download.content == FAPIAO_PDF


def test_finance_refuses_with_a_reason(client, fapiao, finance_user):
    staff_login(client, finance_user)
    done = money_post(
        client, urls(fapiao)["refuse"], {"reason": "Wrong bank account."}, follow=True
    )
    assert "refused" in done.content.decode()
    fapiao.refresh_from_db()
    assert (fapiao.status, fapiao.refusal_reason) == ("refused", "Wrong bank account.")


def test_the_queue_is_chinese_for_a_chinese_finance_user(client, fapiao, finance_user):
    staff_login(client, finance_user)
    client.cookies["django_language"] = "zh-hans"
    body = client.get(LIST).content.decode()
    assert "开票申请" in body and "增值税专用发票" in body
    form = client.get(urls(fapiao)["issue"]).content.decode()
    assert "发票号码" in form and "发票文件（PDF 或 OFD）" in form


def test_no_one_adds_changes_or_deletes_a_request(client, fapiao, admin_user):
    staff_login(client, admin_user)
    assert client.get(LIST + "add/").status_code == 403
    delete = reverse("admin:invoicing_fapiaorequest_delete", args=[fapiao.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert FapiaoRequest.objects.filter(pk=fapiao.pk).exists()
