"""WeChat Pay and Alipay on the customer's pages in a real browser (issue 18),
in English and in Chinese: the top-up offers both providers, WeChat Pay's
Native payment shows its QR code (SVG, no script) with what to do on a
phone, and once the notification arrives the balance page lists the
payment as received. Debian's Chromium driven by Playwright. Screenshots go
to ``$SCREENSHOTS_DIR`` if set (``docs/screenshots`` holds the committed
ones, ``9x-``), else to a temporary directory."""

from __future__ import annotations

import datetime as dt
import os
import urllib.request
from pathlib import Path

import pytest
import time_machine
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing import services
from core.time import SHANGHAI
from gateways import services as gateway_services
from gateways.alipay import AlipayProvider
from gateways.wechatpay import WeChatPayProvider
from tests import factories
from tests.test_browser import ARGS, PASSWORD, _chromium, _log_in

from .fakes import alipay_statement, wechatpay_bill

LOCALES = {"en-US": "en", "zh-CN": "zh"}
TEXTS = {
    "en": ("Alipay", "WeChat Pay", "Open WeChat on your phone", "Paid", "¥88.00"),
    "zh": ("支付宝", "微信支付", "在手机上打开微信", "已付款", "88.00 元"),
}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_wechat_pay_qr_page_in_english_and_chinese(
    alipay, wechatpay, live_server, catalog, agreement, t0, tmp_path_factory
):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path_factory.mktemp("i18-shots"))
    base = live_server.url
    # The database before the browser: no ORM inside Playwright's event loop.
    accounts = {}
    for suffix in LOCALES.values():
        accounts[suffix] = factories.make_account(f"QR {suffix.upper()} Co", now=t0)
        factories.confirm_email(accounts[suffix].owner)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=ARGS)
        try:
            for locale, suffix in LOCALES.items():
                account = accounts[suffix]
                context = browser.new_context(
                    locale=locale, viewport={"width": 1100, "height": 900}
                )
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.goto(f"{base}/accounts/login/?next=/account/balance/")
                page.fill("#id_username", account.owner.username)
                page.fill("#id_password", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_url(f"{base}/account/balance/")
                form = page.locator("main form").first.inner_text()
                alipay_name, wechat_name, scan_step, received, amount = TEXTS[suffix]
                assert alipay_name in form and wechat_name in form

                page.fill("#id_amount", "88")
                page.select_option("#id_provider", "wechatpay")
                page.click("main form button[type=submit]")
                page.wait_for_url(f"{base}/account/pay/**/qr/")
                main = page.locator("main").inner_text()
                assert scan_step in main and amount in main
                assert page.locator("main .qr svg").is_visible()
                # Drawn large enough to scan from a screen (about 240 px, not 90).
                box = page.locator("main .qr svg").bounding_box()
                assert box is not None and box["width"] >= 200 and box["height"] >= 200, box
                # No inline script: whatever script the page loads is a file.
                assert all(s.get_attribute("src") for s in page.locator("script").all())
                page.screenshot(path=str(shots / f"91-wechat-pay-qr-{suffix}.png"), full_page=True)

                reference = page.url.rstrip("/").split("/")[-2]  # /account/pay/<ref>/qr/
                wechatpay.pay(reference)
                assert wechatpay.notify(reference) == (204, "")
                page.goto(f"{base}/account/balance/")
                listed = page.locator("#online-payments").inner_text()
                assert reference in listed and wechat_name in listed
                page.locator("#online-payments").screenshot(
                    path=str(shots / f"92-online-payments-{suffix}.png")
                )
                assert received in listed, listed
                context.close()
        finally:
            browser.close()


ADMIN_TEXTS = {
    "en": {
        "import": "Import a provider statement",
        "imported": "reconciliation line(s) open",
        "days": "paid at the provider",
        "lines": "Paid at the provider, not recorded here",
        "explain": "Explain a reconciliation line",
        "messages": "Paid after its close",
    },
    "zh": {
        "import": "导入支付渠道对账单",
        "imported": "待处理对账差异",
        "days": "渠道收款",
        "lines": "渠道已收款，本系统未入账",
        "explain": "说明对账差异",
        "messages": "关闭后付款",
    },
}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_finance_reconciles_in_the_admin_in_english_and_chinese(
    alipay, wechatpay, live_server, account, tmp_path, tmp_path_factory
):
    """Finance (password and authenticator code) uploads a statement, reads
    the reconciled day and its lines, opens the explain form, and reads the
    provider messages that need finance; English with Alipay's statement,
    Chinese with WeChat Pay's bill. Screenshots ``93-`` to ``96-``."""
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path_factory.mktemp("i18-admin"))
    morning = dt.datetime(2026, 12, 8, 10, 0, tzinfo=SHANGHAI)  # no midnight in the test
    with time_machine.travel(morning, tick=True):
        finance = factories.make_staff("finance-reconcile", group="finance")
        device = TOTPDevice.objects.create(user=finance, name="phone", confirmed=True)
        # WeChat Pay: one paid after its close (listed for finance), one the bill omits.
        # (The poll that closes the first runs before the Alipay payments exist.)
        late = services.online_payment_start(
            account=account, provider="wechatpay", amount_fen=7_000, actor=account.owner
        )
        WeChatPayProvider().start(late)
        gateway_services.payments_poll(now=late.expires_at + dt.timedelta(minutes=1))
        wechatpay.pay(late.reference)
        wechatpay.notify(late.reference)
        kept = services.online_payment_start(
            account=account, provider="wechatpay", amount_fen=8_800, actor=account.owner
        )
        WeChatPayProvider().start(kept)
        wechatpay.pay(kept.reference)
        wechatpay.notify(kept.reference)
        # Alipay: one payment notified, one whose notification was lost.
        for fen, notify in ((12_000, True), (34_500, False)):
            payment = services.online_payment_start(
                account=account, provider="alipay", amount_fen=fen, actor=account.owner
            )
            urllib.request.urlopen(AlipayProvider().start(payment).url, timeout=10).close()
            alipay.pay(payment.reference)
            if notify:
                alipay.notify(payment.reference)
        day = morning.date()
        files = {
            "en": ("alipay", tmp_path / "alipay-20261208.csv", alipay_statement(alipay, day)),
            "zh": (
                "wechatpay",
                tmp_path / "wechatpay-20261208.csv",
                wechatpay_bill(wechatpay, day, omit=(kept.reference,)),
            ),
        }
        for _provider, path, data in files.values():
            path.write_bytes(data)
        base = live_server.url
        from playwright.sync_api import sync_playwright

        seen: dict[str, dict[str, str]] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=ARGS)
            try:
                for locale, suffix in LOCALES.items():
                    provider, path, _data = files[suffix]
                    context = browser.new_context(
                        locale=locale, viewport={"width": 1500, "height": 900}
                    )
                    page = context.new_page()
                    page.set_default_timeout(30_000)
                    _log_in(page, base, finance.username, factories.next_totp_code(device.pk))
                    page.goto(f"{base}/admin/gateways/statementimport/add/")
                    page.select_option("#id_provider", provider)
                    page.set_input_files("#id_file", str(path))
                    page.screenshot(path=str(shots / f"93-statement-import-{suffix}.png"))
                    got = {"import": page.locator("#content h1").inner_text()}
                    page.click("input[type=submit]")
                    page.wait_for_url("**/admin/gateways/statementimport/")
                    got["imported"] = page.locator("ul.messagelist").inner_text()
                    page.goto(f"{base}/admin/gateways/reconciledday/?provider={provider}")
                    got["days"] = page.locator("#result_list").inner_text()
                    page.screenshot(path=str(shots / f"94-reconciled-days-{suffix}.png"))
                    page.click("#result_list td.field-open_lines a")
                    page.wait_for_url("**/admin/gateways/mismatch/**")
                    got["lines"] = page.locator("#result_list").inner_text()
                    page.screenshot(path=str(shots / f"95-reconciliation-lines-{suffix}.png"))
                    page.click("#result_list tbody th a")
                    page.click("a.billing-tool")
                    page.wait_for_url("**/explain/")
                    got["explain"] = page.locator("#content h1").inner_text()
                    page.goto(f"{base}/admin/gateways/providermessage/?for_finance=yes")
                    got["messages"] = page.locator("#result_list").inner_text()
                    page.screenshot(
                        path=str(shots / f"96-provider-messages-{suffix}.png"), full_page=True
                    )
                    seen[suffix] = got
                    context.close()
            finally:
                browser.close()
    for suffix, texts in ADMIN_TEXTS.items():
        for key, text in texts.items():
            assert text.lower() in seen[suffix][key].lower(), (suffix, key, seen[suffix][key])
    assert "¥345.00" in seen["en"]["lines"]  # the lost Alipay payment, paid there only
    assert "¥88.00" in seen["zh"]["lines"]  # the WeChat Pay payment the bill omits
