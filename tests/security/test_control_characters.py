"""Issue 20, item 4: single-line values (names, references, subjects,
labels) refuse CR, LF and other control characters, and the characters that
reorder text, with a message naming the field; multi-line text (bodies,
reasons, notes) refuses them except tab, CR and LF. The services refuse them
themselves (nothing written), and the forms say so next to the field."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing import services
from billing.models import Account, AgreementVersion, LedgerEntry, Order, Package
from core import text
from notices import services as notice_services
from notices.models import NonRenewalNotice
from tests import factories
from tests.adminforms import money_post, staff_login
from workdays.models import CalendarYear
from workdays.services import DayEntry, calendar_year_enter

User = get_user_model()
CR_LF = "A\r\nB"


def one_line_message(field: str, char: str) -> str:
    return (
        f"{field} must be one line of text, without line breaks or control characters "
        f"(it contains {char})."
    )


def text_message(field: str, char: str) -> str:
    return f"{field} contains a control character ({char}) that cannot be kept; remove it."


# --- core.text --------------------------------------------------------------------


@pytest.mark.parametrize(
    "char",
    ["\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u202e", "\u2066", "\u200f"]
    + ["\u2028", "\u2029", "\u061c"],
)
def test_single_line_refuses_each_control_and_reordering_character(char):
    with pytest.raises(ValidationError) as refused:
        text.single_line(f"ok{char}ok", field="name", label="Name")
    assert refused.value.message_dict == {"name": [one_line_message("Name", text.codepoint(char))]}
    assert refused.value.error_dict["name"][0].code == "control_character"


@pytest.mark.parametrize(
    "value", ["Lin Studio", "林氏工作室 Lin", "Café – “quoted”", "👩‍💻 team", "a\u00adb", ""]
)
def test_single_line_lets_ordinary_text_through(value):
    assert text.single_line(value, field="name", label="Name") == value


def test_multi_line_text_allows_tab_cr_lf_but_not_nul_or_overrides():
    assert text.safe_text("a\r\nb\tc\n", field="body", label="Body") == "a\r\nb\tc\n"
    for char in ("\x00", "\x0b", "\u202e"):
        with pytest.raises(ValidationError) as refused:
            text.safe_text(f"a{char}b", field="body", label="Body")
        assert refused.value.message_dict == {"body": [text_message("Body", text.codepoint(char))]}


def test_one_line_and_safe_subject_fold_and_never_refuse():
    assert text.one_line("Hi\r\nBcc: evil@example.com") == "Hi Bcc: evil@example.com"
    assert text.one_line("  a\t\tb \x00c\u202ed\u2028e  ") == "a b cd e"
    assert text.clean_text("a\x00b\r\nc\u202e") == "ab\r\nc"
    assert text.safe_subject("x" * 400) == "x" * 249 + "…"
    assert text.safe_subject(None) == ""


def test_the_validator_names_its_field_in_chinese():
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        text.SingleLine("主题")("a\nb")
    assert refused.value.messages == [
        "主题 必须是一行文字，不能包含换行或控制字符（含有 U+000A）。"
    ]


# --- the services refuse, nothing written ----------------------------------------------


@pytest.mark.django_db
def test_account_open_refuses_a_name_with_a_line_break(catalog, t0):
    owner = factories.make_user()
    with pytest.raises(ValidationError) as refused:
        services.account_open(name=CR_LF, owner=owner, email=owner.email, now=t0)
    assert refused.value.message_dict == {"name": [one_line_message("Account name", "U+000D")]}
    assert not Account.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "label"), [("reference", "Reference"), ("memo", "Memo")], ids=["ref", "memo"]
)
def test_top_up_refuses_a_reference_or_memo_with_control_characters(
    account, finance_user, t0, field, label
):
    data = {"reference": "ICBC-1", "memo": "wire", field: "ICBC\u202e-1"}
    with pytest.raises(ValidationError) as refused:
        services.balance_top_up(
            account=account, amount_fen=100, channel="offline", actor=finance_user, now=t0, **data
        )
    assert refused.value.message_dict == {field: [one_line_message(label, "U+202E")]}
    assert not LedgerEntry.objects.filter(kind="top_up").exists()


@pytest.mark.django_db
def test_every_ledger_reference_is_one_line_payouts_included(account, t0):
    """ledger_post is where every top-up, payment, refund and payout reference
    goes (refunds.services.refund_pay_out included)."""
    locked_before = Account.objects.get(pk=account.pk).balance_fen
    with pytest.raises(ValidationError) as refused:
        services.ledger_post(
            account=account, kind="top_up", amount_fen=100, now=t0, reference="BANK\n2"
        )
    assert refused.value.message_dict == {"reference": [one_line_message("Reference", "U+000A")]}
    assert Account.objects.get(pk=account.pk).balance_fen == locked_before


@pytest.mark.django_db
def test_offline_payment_refuses_a_bank_reference_with_a_line_break(account, catalog, t0):
    finance = factories.make_staff("fin-cc", group="finance")
    order = services.order_confirm(
        order=services.order_place(
            account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
        ),
        actor=account.owner,
        now=t0,
    )
    with pytest.raises(ValidationError) as refused:
        services.offline_payment_record(order=order, bank_reference=CR_LF, actor=finance, now=t0)
    assert refused.value.message_dict == {
        "reference": [one_line_message("Bank reference", "U+000D")]
    }
    order.refresh_from_db()
    assert order.status == Order.Status.CONFIRMED and order.external_reference == ""


@pytest.mark.django_db
def test_order_cancel_refuses_a_reason_with_a_line_break(account, catalog, t0):
    order = services.order_place(
        account=account, package=catalog["pro-monthly"], actor=account.owner, now=t0
    )
    with pytest.raises(ValidationError) as refused:
        services.order_cancel(order=order, actor=account.owner, reason="no\nmore", now=t0)
    assert refused.value.message_dict == {"reason": [one_line_message("Reason", "U+000A")]}
    assert Order.objects.get(pk=order.pk).status == Order.Status.DRAFT


@pytest.mark.django_db
def test_agreement_version_title_is_one_line_and_its_text_has_no_nul(db, t0):
    staff = factories.make_user("agreement-admin", is_staff=True, is_superuser=True)
    args = {"version": "2030-01-01", "text": "Text.", "actor": staff, "now": t0}
    later = t0 + dt.timedelta(days=30)
    with pytest.raises(ValidationError) as refused:
        services.agreement_version_publish(**args, title="Refund\rAgreement", effective_from=later)
    assert refused.value.message_dict == {"title": [one_line_message("Title", "U+000D")]}
    with pytest.raises(ValidationError) as refused:
        services.agreement_version_publish(**(args | {"text": "a\x00"}), effective_from=later)
    assert refused.value.message_dict == {"text": [text_message("Text", "U+0000")]}
    assert not AgreementVersion.objects.exists()


@pytest.mark.django_db
def test_notice_reference_and_withdrawal_reason(account, catalog, t0, support_user):
    factories.provider_top_up(account, 9_900, now=t0)
    sub = factories.buy(account, catalog["pro-monthly"], now=t0).subscription
    with pytest.raises(ValidationError) as refused:
        notice_services.notice_give(
            account=account,
            subscription=sub,
            channel="email",
            actor=support_user,
            received_at=t0,
            reference="<id@x>\r\nBcc: y",
            now=t0,
        )
    assert refused.value.message_dict == {"reference": [one_line_message("Reference", "U+000D")]}
    assert not NonRenewalNotice.objects.exists()
    given = notice_services.notice_give(
        account=account, subscription=sub, channel="account_page", actor=account.owner, now=t0
    )
    with pytest.raises(ValidationError) as refused:
        notice_services.notice_withdraw(
            account=account, notice=given.notice, actor=account.owner, reason="x\x1by", now=t0
        )
    assert refused.value.message_dict == {"reason": [text_message("Reason", "U+001B")]}
    # Several lines are fine in a reason; the history label has them on one.
    withdrawn = notice_services.notice_withdraw(
        account=account, notice=given.notice, actor=account.owner, reason="one\r\ntwo", now=t0
    )
    assert withdrawn.withdrawal_reason == "one\r\ntwo"
    assert withdrawn.history.first().history_change_reason.endswith(": one two")


@pytest.mark.django_db
def test_a_holiday_name_is_one_line(db):
    staff = factories.make_user("calendar-cc", is_staff=True, is_superuser=True)
    days = [DayEntry(dt.date(2030, 1, 1), "off", "New\nYear")]
    with pytest.raises(ValidationError) as refused:
        calendar_year_enter(year=2030, days=days, actor=staff)
    assert refused.value.message_dict == {
        "days": [one_line_message("Name of 2030-01-01", "U+000A")]
    }
    with pytest.raises(ValidationError) as refused:
        calendar_year_enter(
            year=2030,
            days=[DayEntry(dt.date(2030, 1, 1), "off", "New Year")],
            actor=staff,
            notice_reference="国办\u202e",
        )
    assert refused.value.message_dict == {
        "notice_reference": [one_line_message("Notice reference", "U+202E")]
    }
    assert not CalendarYear.objects.filter(year=2030).exists()


@pytest.mark.django_db
def test_fulfilment_note_may_have_lines_but_no_control_characters(account, catalog, t0):
    finance = factories.make_staff("fin-note", group="finance")
    order = services.order_place(
        account=account,
        package=catalog["custom"],
        kind="custom",
        seats=2,
        agreed_amount_fen=100,
        actor=finance,
        now=t0,
    )
    with pytest.raises(ValidationError) as refused:
        services.order_fulfil(order=order, actor=finance, note="done\x07", now=t0)
    assert refused.value.message_dict == {"note": [text_message("What was provided", "U+0007")]}


# --- the forms say it next to the field -------------------------------------------------


def _shown(response, message: str) -> None:
    assert response.status_code == 200
    body = response.content.decode()
    # Django escapes the message in HTML; the words and the code point are there.
    assert message.split(" (")[0] in body, body[:3000]
    assert message.rsplit("(", 1)[1].split(")")[0] in body


@pytest.mark.django_db
def test_signup_form_refuses_an_account_name_with_a_line_break(client, catalog, agreement):
    response = client.post(
        reverse("accounts:signup"),
        {
            "email": "cc@example.com",
            "account_name": "Lin\r\nStudio",
            "password1": "Plum-tree-42-river",
            "password2": "Plum-tree-42-river",
            "accepts_agreement": "on",
        },
    )
    _shown(response, one_line_message("Account name", "U+000D"))
    assert not User.objects.exists() and not Account.objects.exists()


@pytest.mark.django_db
def test_customer_complaint_form_refuses_a_subject_with_control_characters(client, account):
    from complaints.models import Complaint
    from tests.accounts.service_helpers import submit

    client.force_login(account.owner)
    response = submit(
        client,
        "/account/complaints/",
        {"subject": "Hi\u202eBcc", "category": "other", "body": "Please\ncheck."},
    )
    _shown(response, one_line_message("Subject", "U+202E"))
    assert not Complaint.objects.exists()


@pytest.mark.django_db
def test_admin_top_up_form_refuses_a_reference_with_a_line_break(client, account):
    finance = factories.make_staff("fin-form", group="finance")
    staff_login(client, finance)
    url = reverse("admin:billing_account_top_up", args=[account.pk])
    response = money_post(
        client, url, {"amount": "10", "channel": "offline", "reference": "ICBC\r\n7"}
    )
    _shown(response, one_line_message("Reference", "U+000D"))
    assert not LedgerEntry.objects.filter(kind="top_up", channel="offline").exists()


@pytest.mark.django_db
def test_admin_model_forms_refuse_names_with_control_characters(admin_client, account, catalog):
    """The admin's own model forms (core.admin_mixins.SafeTextAdminMixin):
    an account's name, a package's name, a user's name."""
    url = reverse("admin:billing_account_change", args=[account.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["name"] = "Acme\nBcc"
    for prefix, formset in ((f.prefix, f) for f in page.context["inline_admin_formsets"]):
        mgmt = formset.formset.management_form
        for key in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"):
            data[f"{prefix}-{key}"] = mgmt.initial.get(key, 0)
    response = admin_client.post(url, data)
    _shown(response, one_line_message("Name", "U+000A"))
    assert Account.objects.get(pk=account.pk).name == "Acme"

    free = catalog["free"]
    url = reverse("admin:billing_package_change", args=[free.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k in form.fields}
    data["name_en"] = "Free\u202e"
    data["is_active"] = "on"
    for formset in page.context["inline_admin_formsets"]:
        mgmt = formset.formset.management_form
        for key in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"):
            data[f"{formset.formset.prefix}-{key}"] = mgmt.initial.get(key, 0)
    response = admin_client.post(url, data)
    _shown(response, one_line_message("Name (English)", "U+202E"))
    assert Package.objects.get(pk=free.pk).name_en == "Free"

    user = account.owner
    url = reverse("admin:auth_user_change", args=[user.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k in form.fields}
    data.pop("password", None)
    data["groups"] = []
    data["user_permissions"] = []
    data["last_login_0"] = data["last_login_1"] = ""
    data["date_joined_0"], data["date_joined_1"] = "2025-01-01", "10:00:00"
    data["first_name"] = "Lin\r\n"
    data["last_name"] = "Bcc\tx"
    response = admin_client.post(url, {k: v for k, v in data.items() if v is not False})
    _shown(response, one_line_message("Last name", "U+0009"))
    user.refresh_from_db()
    assert user.last_name == ""


@pytest.mark.django_db
def test_admin_calendar_inline_refuses_a_holiday_name_with_a_line_break(admin_client):
    data = {
        "year": "2031",
        "status": "official",
        "notice_reference": "test",
        "days-TOTAL_FORMS": "1",
        "days-INITIAL_FORMS": "0",
        "days-MIN_NUM_FORMS": "0",
        "days-MAX_NUM_FORMS": "1000",
        "days-0-date": "2031-01-01",
        "days-0-kind": "off",
        "days-0-name": "New\r\nYear",
    }
    response = admin_client.post("/admin/workdays/calendaryear/add/", data)
    _shown(response, one_line_message("Name", "U+000D"))
    assert not CalendarYear.objects.filter(year=2031).exists()
