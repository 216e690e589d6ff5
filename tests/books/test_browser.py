"""Issue 19 in a real browser: finance opens the month close in English and
in Chinese. Screenshots go to a temporary directory, or to
``I19_SCREENSHOTS`` when set (88-month-close-en, -zh)."""

from __future__ import annotations

import datetime as dt

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.policy import SHANGHAI as SH
from tests import factories
from tests.invoicing.test_browser import LANGS, _shots
from tests.test_browser import ARGS, PASSWORD, _chromium


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_month_close_in_english_and_chinese(live_server, catalog, agreement, tmp_path_factory):
    at = dt.datetime(2025, 4, 16, 0, tzinfo=SH)
    account = factories.make_account("Y Co", now=at, balance_fen=120_000)
    factories.buy(account, catalog["pro-annual"], now=at)
    finance = factories.make_staff("finance-books", group="finance")
    device = TOTPDevice.objects.create(user=finance, name="phone", confirmed=True)
    shots = _shots(tmp_path_factory)
    base = live_server.url
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, str] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for lang, locale in LANGS:
                context = browser.new_context(
                    locale=locale, viewport={"width": 1280, "height": 900}
                )
                page = context.new_page()
                page.goto(f"{base}/admin/login/")
                page.fill("#id_username", finance.username)
                page.fill("#id_password", PASSWORD)
                page.fill("#id_otp_token", factories.next_totp_code(device.pk))
                page.click("input[type=submit]")
                page.wait_for_url(f"{base}/admin/")
                page.goto(f"{base}/admin/books/monthclose/?month=2025-04")
                page.screenshot(path=str(shots / f"88-month-close-{lang}.png"), full_page=True)
                seen[lang] = page.locator("#content-main").inner_text()
                context.close()
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")
    assert "Revenue recognised" in seen["en"] and "It adds up" in seen["en"]
    assert "¥1,200.00" in seen["en"]  # received online
    assert "确认收入" in seen["zh"] and "账目平衡" in seen["zh"]
