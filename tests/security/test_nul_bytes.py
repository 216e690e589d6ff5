"""Issue 20, item 4: a NUL byte (or another C0 control character) in the
path, the query string or a form value is answered 400 with a clear,
translated message before any view or the ORM sees it
(``config.middleware.ControlCharacterMiddleware``); these gave 500
(``psycopg.DataError``) before. Reading the form leaves the raw body readable
for the views that need it (the payment provider's callback)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import OnlinePayment
from tests import factories
from tests.adminforms import staff_login

PATH_MESSAGE = (
    "This address contains a control character (U+0000), which no address of this site uses."
)


def _refused(response, words: str) -> str:
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-status="400"' in body and 'class="site-header"' in body
    assert words in body, body[-2500:]
    return body


@pytest.fixture
def finance_client(client, db):
    staff_login(client, factories.make_staff("finance-nul", group="finance"))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/billing/order/?status__exact=%00",
        "/admin/complaints/complaint/?status__exact=%00",
        "/admin/refunds/refundrequest/?status__exact=%00",
        "/admin/billing/order/?q=a%00b",
        "/admin/billing/ledgerentry/?kind__exact=top_up&channel__exact=%01",
    ],
)
def test_a_nul_in_an_admin_filter_is_a_400_with_the_message(finance_client, url):
    name = url.split("?")[1].split("&")[-1].split("=")[0]
    char = "U+0001" if "%01" in url else "U+0000"
    _refused(
        finance_client.get(url),
        f"The address&#x27;s parameter {name} contains a control character ({char}).",
    )


@pytest.mark.django_db
def test_a_cr_or_lf_in_a_filter_is_left_to_the_page_and_is_no_5xx(finance_client):
    for url in (
        "/admin/billing/order/?status__exact=%0D%0A",
        "/admin/complaints/complaint/?q=a%0Ab",
    ):
        assert finance_client.get(url).status_code < 500


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/pay/sandbox/%00/", "/account/complaints/%00/", "/admin/%00/", "/x%0D%0Ay/"]
)
def test_a_control_character_in_the_path_is_a_400(client, url):
    char = "U+000D" if "%0D" in url else "U+0000"
    _refused(client.get(url), PATH_MESSAGE.replace("U+0000", char))


@pytest.mark.django_db
def test_a_nul_in_a_form_value_is_a_400_and_nothing_is_done(client, account):
    response = client.post(
        reverse("accounts:login"),
        {"username": account.owner.username + "\x00", "password": "pw"},
    )
    _refused(
        response,
        "The form&#x27;s field username contains a control character (U+0000) that cannot be "
        "accepted.",
    )
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_nul_in_a_multipart_form_value_is_a_400(client, account):
    client.force_login(account.owner)
    response = client.post("/account/complaints/", {"subject": "a\x00", "body": "b"})
    _refused(response, "The form&#x27;s field subject contains a control character (U+0000)")


@pytest.mark.django_db
def test_the_message_in_chinese(client):
    client.cookies["django_language"] = "zh-hans"
    body = _refused(client.get("/pay/sandbox/%00/"), "此网址含有控制字符（U+0000）")
    assert '<html lang="zh-hans">' in body


@pytest.mark.django_db
@pytest.mark.urls("tests.error_urls")
def test_the_raw_body_stays_readable_after_the_form_was_checked(client):
    form = client.post(
        "/test-errors/echo/",
        "a=1&b=two",
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status_code == 200
    assert json.loads(form.content) == {"body": "a=1&b=two", "form": {"a": "1", "b": "two"}}
    multipart = client.post("/test-errors/echo/", {"a": "1", "note": "line\r\nbreak\tok"})
    seen = json.loads(multipart.content)
    assert seen["form"] == {"a": "1", "note": "line\r\nbreak\tok"}
    assert 'name="note"' in seen["body"]
    raw = client.post("/test-errors/echo/", '{"x": "\\u0000"}', content_type="application/json")
    assert json.loads(raw.content)["body"] == '{"x": "\\u0000"}'  # JSON is its reader's to judge
    # An ordinary address with nothing refused goes through.
    assert client.get("/test-errors/ok/plain/").content == b"ok"


@pytest.mark.django_db
def test_the_sandbox_callback_still_records_a_payment(client, account, t0):
    """The provider callback reads the posted form after the middleware did."""
    from accounts import payments
    from billing import services

    client.force_login(account.owner)
    payment = services.online_payment_start(
        account=account, provider="sandbox", amount_fen=12_300, actor=account.owner
    )
    fields = payments.provider("sandbox").callback_fields(payment, paid=True)
    response = Client().post(reverse("accounts:payment_callback", args=["sandbox"]), fields)
    assert response.status_code < 400, response.content[:500]
    payment.refresh_from_db()
    assert payment.status == OnlinePayment.Status.SUCCEEDED
    account.refresh_from_db()
    assert account.balance_fen == 12_300
