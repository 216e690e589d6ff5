"""WeChat Pay and Alipay on the customer's pages in a real browser (issue 18),
in English and in Chinese: the top-up offers both providers, WeChat Pay's
Native payment shows its QR code (SVG, no script) with what to do on a
phone, and once the notification arrives the balance page lists the
payment as received. Debian's Chromium driven by Playwright. Screenshots go
to ``$SCREENSHOTS_DIR`` if set (``docs/screenshots`` holds the committed
ones, ``9x-``), else to a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import factories
from tests.test_browser import ARGS, PASSWORD, _chromium

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
