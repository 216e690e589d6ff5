"""Rule 9 and 10 in a real browser: a finance clerk opens the admin in English
and in Chinese (the language their browser asks for) and tops up a balance in
Chinese. Headless Chromium from Debian (``apt-get install chromium
fonts-wqy-microhei``; ``.ci/run`` installs them), driven by Playwright, which
downloads no browser of its own. Screenshots go to a temporary directory
(printed) for a person to look at.

Playwright's sync API runs an event loop in this thread, where Django refuses
database queries; so the data is made before the browser starts and checked
after it closed. The live server answers from its own thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.models import LedgerEntry

from . import factories

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PASSWORD = "pw"  # factories.make_user


def _chromium() -> str:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium fonts-wqy-microhei", pytrace=False
        )
    return str(CHROMIUM)


def _log_in(page, base: str, username: str, code: str = "") -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", code)  # finance: the authenticator's code (issue 10)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_missing_chromium_fails_with_the_install_command(monkeypatch):
    """Never a skip: a machine without Chromium fails, saying what to install."""
    monkeypatch.setattr(f"{__name__}.CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.fail.Exception) as failed:
        _chromium()
    assert str(failed.value) == (
        "/nonexistent/chromium is missing: apt-get install chromium fonts-wqy-microhei"
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_in_english_and_chinese_and_a_top_up_in_chinese(
    live_server, account, tmp_path_factory
):
    finance = factories.make_staff("finance-browser", group="finance")
    device = TOTPDevice.objects.create(user=finance, name="phone", confirmed=True)
    top_up = reverse("admin:billing_account_top_up", args=[account.pk])
    shots = tmp_path_factory.mktemp("browser-screenshots")
    base = live_server.url
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for locale in ("en-US", "zh-CN"):
                context = browser.new_context(
                    locale=locale, viewport={"width": 1280, "height": 900}
                )
                page = context.new_page()
                # Each login needs a code not used before (replay protection).
                _log_in(page, base, finance.username, factories.next_totp_code(device.pk))
                page.screenshot(path=str(shots / f"admin-index-{locale}.png"), full_page=True)
                index = {
                    "lang": page.locator("html").get_attribute("lang") or "",
                    "header": page.locator("#site-name").inner_text(),
                    "body": page.locator("#content").inner_text(),
                }
                page.goto(base + top_up)
                page.screenshot(path=str(shots / f"top-up-{locale}.png"), full_page=True)
                form = {
                    "title": page.locator("#content h1").inner_text(),
                    "amount_label": page.locator("label[for=id_amount]").inner_text(),
                    "channel_label": page.locator("label[for=id_channel]").inner_text(),
                    "submit": page.locator("input[type=submit]").get_attribute("value") or "",
                }
                if locale == "zh-CN":
                    page.fill("#id_amount", "100")
                    page.select_option("#id_channel", "offline")
                    page.fill("#id_reference", "ICBC-ZH-0001")
                    page.click("input[type=submit]")
                    page.wait_for_url(f"**/admin/billing/account/{account.pk}/change/")
                    page.screenshot(path=str(shots / "top-up-done-zh-CN.png"), full_page=True)
                    form["message"] = page.locator("ul.messagelist li.success").inner_text()
                    # The account 360 page (issue 10) shows the balance in its own box.
                    balance = page.locator("#account360-balance .account360-balance")
                    form["balance"] = balance.inner_text()
                seen[locale] = {**index, **{f"form_{k}": v for k, v in form.items()}}
                context.close()
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    english, chinese = seen["en-US"], seen["zh-CN"]
    assert english["lang"] == "en"
    assert english["header"] == "MTlogin billing back office"
    assert "billing" in english["body"].lower() and "计费" not in english["body"]
    assert english["form_title"] == "Top up balance"
    assert english["form_amount_label"] == "Amount (yuan):"
    assert english["form_submit"] == "Top up"

    assert chinese["lang"] == "zh-hans"
    assert chinese["header"] == "MTlogin 计费后台"
    assert "计费" in chinese["body"] and "不续费通知" in chinese["body"]
    assert "billing" not in chinese["body"].lower()
    assert chinese["form_title"] == "充值余额"
    assert chinese["form_amount_label"] == "金额（元）："
    assert chinese["form_channel_label"] == "收款方式："
    assert chinese["form_submit"] == "充值"
    assert chinese["form_message"] == "已为 Acme 充值 ¥100.00。当前余额 ¥100.00。"
    assert chinese["form_balance"] == "¥100.00"

    entry = LedgerEntry.objects.get(account=account, reference="ICBC-ZH-0001")
    assert (entry.amount_fen, entry.channel, entry.created_by_id) == (10_000, "offline", finance.pk)
