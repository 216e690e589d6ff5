"""Issue 11's customer journey, end to end, in a real browser (Debian's
Chromium through Playwright), once in English and once in Chinese (the
browser's language): a new customer signs up and confirms the address, tops
up through the sandbox provider, buys a monthly package with the separate
consent box (P5 automatic deduction), sees the notice deadline, gives a
non-renewal notice and sees it judged on time (P5), invites a member, whose
pending invitation takes the last of the seats bought (P3; no invite form
then), and the colleague joins by signing up through the mailed link
(issue 20), files a complaint and reads
support's reply, which support wrote in the admin (P6), and asks for a refund
and sees it refused citing clause 1 (P1).

Playwright's sync API runs an event loop in this thread, where Django refuses
database queries: the data is checked after the browser closed. Screenshots
go to ``$JOURNEY_SCREENSHOTS`` when set, else to a temporary directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.core import mail

from accounts.services import is_confirmed
from billing.models import Account, AccountMember, AutoRenewalConsent, LedgerEntry, Order
from complaints.models import Complaint, ComplaintMessage
from notices.models import NonRenewalNotice
from refunds.models import RefundRequest
from tests import factories
from tests.test_browser import ARGS, _chromium

PASSWORD = "Quiet-harbour-81-lantern"
STAFF_PASSWORD = "pw"  # factories.make_user
LOCALES = {"en": "en-US", "zh": "zh-CN"}


def _shots(tmp_path_factory) -> Path:
    target = os.environ.get("JOURNEY_SCREENSHOTS")
    if target:
        path = Path(target)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("journey-screenshots")


def _confirmation_link(address: str) -> str:
    for message in reversed(mail.outbox):
        if address in message.to:
            found = re.search(r"/accounts/confirm/[^/\s]+/", message.body)
            if found:
                return found.group(0)
    raise AssertionError(f"no confirmation email to {address}")


def _invitation_link(address: str) -> str:
    for message in reversed(mail.outbox):
        if address in message.to:
            found = re.search(r"/accounts/invitation/[\w-]+/", message.body)
            if found:
                return found.group(0)
    raise AssertionError(f"no invitation email to {address}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_new_customers_journey_in_english_and_chinese(
    live_server, catalog, agreement, tmp_path_factory
):
    support = factories.make_staff("support-journey", group="support")
    shots = _shots(tmp_path_factory)
    base = live_server.url
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for lang, locale in LOCALES.items():
                got: dict[str, str] = {}
                email = f"journey-{lang}@example.com"
                customer = browser.new_context(
                    locale=locale, viewport={"width": 1200, "height": 900}
                )
                page = customer.new_page()
                page.set_default_timeout(30_000)

                def shot(name: str, _lang: str = lang, _page=page) -> None:
                    _page.screenshot(path=str(shots / f"6{name}-{_lang}.png"), full_page=True)

                # Sign up (P2: the free package), then confirm the address.
                page.goto(f"{base}/accounts/signup/")
                got["lang"] = page.locator("html").get_attribute("lang") or ""
                page.fill("#id_email", email)
                page.fill("#id_account_name", f"Journey {lang} studio")
                page.fill("#id_password1", PASSWORD)
                page.fill("#id_password2", PASSWORD)
                page.check("#id_accepts_agreement")
                page.click("main form button[type=submit]")
                # Issue 20: "check your email"; the mailed link (with the
                # password chosen) confirms the address and logs in.
                page.wait_for_selector("#signup-check-email")
                got["signed_up"] = page.locator("main").inner_text()
                page.goto(base + _confirmation_link(email))
                page.fill("#id_password", PASSWORD)
                page.click("#confirm-email button[type=submit]")
                page.wait_for_url(f"{base}/account/")
                got["confirmed"] = page.locator("main").inner_text()

                # Top up ¥500 through the sandbox provider's page.
                page.goto(f"{base}/account/balance/")
                page.fill("#id_amount", "500")
                shot("0-journey-top-up")
                page.click("main form button[type=submit]")
                page.wait_for_url(f"{base}/pay/sandbox/**")
                page.click("button[value=paid]")
                page.wait_for_url(f"{base}/account/balance/")
                got["topped_up"] = page.locator("main").inner_text()

                # Buy the monthly package for 2 seats, consenting to deduction.
                page.goto(f"{base}/account/packages/")
                page.select_option("#id_package", "pro-monthly")
                page.fill("#id_seats", "2")
                page.click("form.choose button[type=submit]")
                page.wait_for_url(f"{base}/account/packages/buy/**")
                got["buy"] = page.locator("main").inner_text()
                page.check("#id_consent")
                page.check("input[name=pay_with][value=balance]")
                shot("1-journey-buy")
                page.click("main form button[type=submit]")
                page.wait_for_url(f"{base}/account/orders/*/receipt/")
                order_id = page.url.rstrip("/").split("/")[-2]

                # The overview shows the expiry and the notice deadline.
                page.goto(f"{base}/account/")
                got["overview"] = page.locator("main").inner_text()
                shot("2-journey-overview")

                # "I do not want to renew": judged on time before submitting.
                page.goto(f"{base}/account/notice/")
                got["judgement"] = (
                    page.locator("[data-judgement]").get_attribute("data-judgement") or ""
                )
                got["notice"] = page.locator("#confirm").inner_text()
                page.click("#confirm button[type=submit]")
                page.wait_for_url("**/account/notice/*/")
                got["acknowledged"] = page.locator("main").inner_text()
                shot("3-journey-notice-acknowledged")

                # Members: one invitation fits the 2 seats and holds the second
                # one; the page then says all seats are taken (no invite form).
                # The colleague joins through the mailed link (issue 20).
                colleague = f"colleague-{lang}@example.com"
                page.goto(f"{base}/account/members/")
                page.fill("#id_email", colleague)
                page.click("main form button[type=submit]")
                page.wait_for_load_state()
                got["members"] = page.locator("main").inner_text()
                got["invite_form_when_full"] = str(page.locator("#id_email").count())
                shot("4-journey-seat-refused")
                invited = browser.new_context(
                    locale=locale, viewport={"width": 1200, "height": 900}
                )
                joiner = invited.new_page()
                joiner.set_default_timeout(30_000)
                joiner.goto(base + _invitation_link(colleague))
                got["invitation"] = joiner.locator("main").inner_text()
                joiner.click("main a.button.secondary")  # create my login
                joiner.fill("#id_password1", PASSWORD)
                joiner.fill("#id_password2", PASSWORD)
                joiner.click("main form button[type=submit]")
                joiner.wait_for_url(f"{base}/account/")
                got["joined"] = joiner.locator("main").inner_text()
                invited.close()

                # A complaint about the order.
                page.goto(f"{base}/account/complaints/")
                page.fill("#id_subject", "Invoice needed" if lang == "en" else "需要发票")
                page.fill("#id_body", "Please send an invoice." if lang == "en" else "请开发票。")
                page.click("main form button[type=submit]")
                page.wait_for_url("**/account/complaints/*/")
                complaint_url = page.url

                # Support answers in the admin (password only: no money role).
                staff = browser.new_context(locale=locale, viewport={"width": 1200, "height": 900})
                desk = staff.new_page()
                desk.set_default_timeout(30_000)
                desk.goto(f"{base}/admin/login/")
                desk.fill("#id_username", support.username)
                desk.fill("#id_password", STAFF_PASSWORD)
                desk.click("input[type=submit]")
                desk.wait_for_url(f"{base}/admin/")
                complaint_id = complaint_url.rstrip("/").rsplit("/", 1)[1]
                desk.goto(f"{base}/admin/complaints/complaint/{complaint_id}/reply/")
                reply = (
                    "The invoice is on your receipt page." if lang == "en" else "发票在收据页面。"
                )
                desk.fill("#id_body", reply)
                desk.click("input[type=submit]")
                desk.wait_for_url(f"{base}/admin/complaints/complaint/{complaint_id}/change/")
                staff.close()

                page.goto(complaint_url)
                got["thread"] = page.locator("main").inner_text()
                got["reply"] = reply
                shot("5-journey-complaint-reply")

                # A refund of the package: refused at once, citing clause 1.
                page.goto(f"{base}/account/refunds/")
                page.select_option("#id_order", order_id)
                page.fill("#id_reason", "Changed my mind" if lang == "en" else "不想用了")
                page.click("main form button[type=submit]")
                page.wait_for_url("**/account/refunds/*/")
                got["refund"] = page.locator("main").inner_text()
                shot("6-journey-refund-refused")

                seen[lang] = got
                customer.close()
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    en, zh = seen["en"], seen["zh"]
    assert en["lang"] == "en" and zh["lang"] == "zh-hans"
    assert "Check your email to finish" in en["signed_up"]
    assert "请查收邮件以完成注册" in zh["signed_up"]
    assert "journey-en@example.com is confirmed" in en["confirmed"]
    assert "journey-zh@example.com 已确认" in zh["confirmed"]
    for got in (en, zh):
        assert "Please confirm your email address" not in got["topped_up"]
    assert "Payment of ¥500.00 received" in en["topped_up"]
    assert "已收到付款 500.00 元" in zh["topped_up"]
    assert "No password, payment password or SMS code is asked for." in en["buy"]
    assert "扣费时不需要输入密码、支付密码或短信验证码。" in zh["buy"]
    assert "Notice deadline" in en["overview"] and "通知截止时间" in zh["overview"]
    assert en["judgement"] == zh["judgement"] == "on-time"
    assert "Your notice is on time." in en["notice"]
    assert "您的通知按时提交。" in zh["notice"]
    assert "Received on time" in en["acknowledged"] and "已按时收到" in zh["acknowledged"]
    assert "All 2 seat(s) of Journey en studio are taken" in en["members"]
    assert "Journey zh studio 的全部 2 个席位已被成员和待接受的邀请占用" in zh["members"]
    assert en["invite_form_when_full"] == zh["invite_form_when_full"] == "0"
    assert "Join Journey en studio" in en["invitation"]
    assert "加入 Journey zh studio" in zh["invitation"]
    assert "Welcome to Journey en studio: you are now a member" in en["joined"]
    assert "欢迎加入 Journey zh studio：您现在是其成员" in zh["joined"]
    for got in (en, zh):
        assert got["reply"] in got["thread"]
    assert "Refused under clause 1" in en["refund"]
    assert "第 1 条予以拒绝" in zh["refund"]

    for lang in LOCALES:
        order = Order.objects.get(account__name=f"Journey {lang} studio", kind="new")
        account = order.account
        assert (order.status, order.seats, order.amount_fen) == ("fulfilled", 2, 19_800)
        assert account.balance_fen == 50_000 - 19_800
        assert AutoRenewalConsent.objects.filter(order=order).count() == 1
        assert LedgerEntry.objects.filter(account=account).count() == 2
        notice = NonRenewalNotice.objects.get(account=account)
        assert notice.on_time
        assert AccountMember.objects.filter(account=account).count() == 2
        colleague = AccountMember.objects.get(account=account, role="member").user
        assert colleague.email == f"colleague-{lang}@example.com"
        assert is_confirmed(colleague)
        assert not Account.objects.filter(owner=colleague).exists()
        complaint = Complaint.objects.get(account=account)
        assert ComplaintMessage.objects.filter(
            complaint=complaint, author=support, kind=ComplaintMessage.Kind.STAFF_REPLY
        ).exists()
        refund = RefundRequest.objects.get(account=account)
        assert refund.status == RefundRequest.Status.REFUSED
