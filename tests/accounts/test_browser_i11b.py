"""The money pages in a real browser (issue 11), in English and in Chinese:
a customer tops up through the sandbox provider's page (its signed callback
posted on by a static script), compares packages, buys one with the separate
consent box ticked, and reads the receipt and the ledger. Debian's Chromium
driven by Playwright (no browser download). Screenshots go to
``$SCREENSHOTS_DIR`` if set (``docs/screenshots`` holds the committed ones,
``4x-``), else to a temporary directory (printed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from billing.models import Account, AutoRenewalConsent, LedgerEntry, Order
from tests import factories
from tests.test_browser import ARGS, PASSWORD, _chromium

LOCALES = {"en-US": "en", "zh-CN": "zh"}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_top_up_and_buy_with_consent_in_english_and_chinese(
    live_server, catalog, agreement, t0, tmp_path_factory
):
    accounts = {
        locale: factories.make_account(f"Browser {suffix.upper()} Co", now=t0)
        for locale, suffix in LOCALES.items()
    }
    for account in accounts.values():
        factories.confirm_email(account.owner)
    users = {locale: account.owner.username for locale, account in accounts.items()}
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path_factory.mktemp("i11b-shots"))
    base = live_server.url
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for locale, suffix in LOCALES.items():
                context = browser.new_context(
                    locale=locale, viewport={"width": 1200, "height": 900}
                )
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.goto(f"{base}/accounts/login/?next=/account/balance/")
                page.fill("#id_username", users[locale])
                page.fill("#id_password", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_url(f"{base}/account/balance/")
                got: dict[str, str] = {"lang": page.locator("html").get_attribute("lang") or ""}

                # Top up ¥500 through the sandbox provider.
                page.fill("#id_amount", "500")
                page.click("main form button[type=submit]")
                page.wait_for_url(f"{base}/pay/sandbox/**")
                got["sandbox"] = page.locator("main").inner_text()
                page.screenshot(path=str(shots / f"42-sandbox-page-{suffix}.png"), full_page=True)
                page.click("button[value=paid]")
                page.wait_for_url(f"{base}/account/balance/")  # the signed callback, then back
                got["after_top_up"] = page.locator("main").inner_text()

                # Compare packages, choose 2 seats of the monthly package.
                page.goto(f"{base}/account/packages/")
                got["packages"] = page.locator("main").inner_text()
                page.screenshot(path=str(shots / f"43-packages-{suffix}.png"), full_page=True)
                page.select_option("#id_package", "pro-monthly")
                page.fill("#id_seats", "2")
                page.click("form.choose button[type=submit]")
                page.wait_for_url(f"{base}/account/packages/buy/**")
                got["buy"] = page.locator("main").inner_text()
                page.check("#id_consent")
                page.check("input[name=pay_with][value=balance]")
                page.screenshot(
                    path=str(shots / f"44-buy-with-consent-{suffix}.png"), full_page=True
                )
                page.click("main form button[type=submit]")
                page.wait_for_url(f"{base}/account/orders/*/receipt/")
                got["receipt"] = page.locator("main").inner_text()
                page.screenshot(path=str(shots / f"45-receipt-{suffix}.png"), full_page=True)

                page.goto(f"{base}/account/balance/")
                got["balance"] = page.locator("main").inner_text()
                page.screenshot(path=str(shots / f"41-balance-ledger-{suffix}.png"), full_page=True)
                seen[locale] = got
                context.close()
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    en, zh = seen["en-US"], seen["zh-CN"]
    assert en["lang"] == "en" and zh["lang"] == "zh-hans"
    assert "Sandbox: no real money moves" in en["sandbox"] and "¥500.00" in en["sandbox"]
    assert "沙箱：不涉及真实资金" in zh["sandbox"] and "500.00 元" in zh["sandbox"]
    assert "Payment of ¥500.00 received and added to your balance." in en["after_top_up"]
    assert "已收到付款 500.00 元，并已充入您的余额。" in zh["after_top_up"]
    assert "Next renewals" in en["packages"] and "接下来的续费" in zh["packages"]
    assert "No password, payment password or SMS code is asked for." in en["buy"]
    assert "扣费时不需要输入密码、支付密码或短信验证码。" in zh["buy"]
    assert "Paid ¥198.00 from your balance" in en["receipt"]
    assert "已用余额支付 198.00 元" in zh["receipt"] and "自动扣费授权" in zh["receipt"]
    assert "¥302.00" in en["balance"] and "302.00 元" in zh["balance"]
    assert "购买" in zh["balance"] and "Purchase" in en["balance"]

    for locale, account in accounts.items():
        assert Account.objects.get(pk=account.pk).balance_fen == 30_200
        order = Order.objects.get(account=account)
        assert (order.status, order.seats, order.amount_fen) == ("fulfilled", 2, 19_800)
        consent = AutoRenewalConsent.objects.get(order=order)
        assert consent.language == LOCALES[locale].replace("zh", "zh-hans")
        assert "Chrome" in consent.user_agent
        assert LedgerEntry.objects.filter(account=account).count() == 2
