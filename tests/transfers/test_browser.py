"""Issue 19 in a real browser, in English and in Chinese: the customer
reports a corporate bank transfer with its slip on the account pages, and
finance finds it in the queue and matches it (credited).

Screenshots go to a temporary directory, or to ``I19_SCREENSHOTS`` when set
(85-transfer-report, 86-transfer-queue, 87-transfer-credited, -en and -zh)."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.models import Account
from tests import factories
from tests.invoicing.test_browser import LANGS, _shots
from tests.test_browser import ARGS, PASSWORD, _chromium
from transfers.models import BankTransfer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_transfer_reported_and_credited_in_english_and_chinese(
    live_server, catalog, agreement, tmp_path_factory
):
    now = timezone.now()
    owners = {}
    for lang, _locale in LANGS:
        account = factories.make_account(f"Acme {lang}", now=now)
        factories.confirm_email(account.owner)
        owners[lang] = (account, account.owner.username)
    finance = factories.make_staff("finance-transfer", group="finance")
    device = TOTPDevice.objects.create(user=finance, name="phone", confirmed=True)
    slip = tmp_path_factory.mktemp("slip") / "slip.png"
    slip.write_bytes(PNG)
    shots = _shots(tmp_path_factory)
    base = live_server.url
    today = timezone.localdate().isoformat()
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for lang, locale in LANGS:
                account, username = owners[lang]
                got: dict[str, str] = {}
                customer = browser.new_context(
                    locale=locale, viewport={"width": 1200, "height": 900}
                )
                page = customer.new_page()
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", username)
                page.fill("#id_password", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_load_state()
                page.goto(f"{base}/account/transfers/")
                got["reference"] = page.locator("#transfer-reference").inner_text()
                page.fill("#id_amount", "2000")
                page.fill("#id_transferred_on", today)
                page.fill("#id_remitter_name", "福州示例软件有限公司")
                page.fill("#id_remitter_account", "6216610100012345678")
                page.set_input_files("#id_slip", str(slip))
                page.screenshot(path=str(shots / f"85-transfer-report-{lang}.png"), full_page=True)
                page.click("main form button[type=submit]")
                page.wait_for_load_state()
                got["message"] = page.locator(
                    ".messages, .message, [role=status]"
                ).first.inner_text()

                staff = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
                admin = staff.new_page()
                admin.goto(f"{base}/admin/login/")
                admin.fill("#id_username", finance.username)
                admin.fill("#id_password", PASSWORD)
                admin.fill("#id_otp_token", factories.next_totp_code(device.pk))
                admin.click("input[type=submit]")
                admin.wait_for_url(f"{base}/admin/")
                admin.goto(f"{base}/admin/transfers/banktransfer/?queue=find")
                admin.screenshot(path=str(shots / f"86-transfer-queue-{lang}.png"), full_page=True)
                got["queue"] = admin.locator("#result_list").inner_text()
                admin.click("#result_list tbody tr:first-child th a")
                admin.click("a:has-text('…')  >> nth=0")
                admin.fill("#id_bank_reference", f"BOC-{lang}-0001")
                admin.fill("#id_amount", "2000")
                admin.click("input[type=submit]")
                admin.wait_for_url("**/change/")
                got["credited"] = admin.locator("ul.messagelist li.success").inner_text()
                staff.close()

                page.goto(f"{base}/account/transfers/")
                page.screenshot(
                    path=str(shots / f"87-transfer-credited-{lang}.png"), full_page=True
                )
                got["listing"] = page.locator("main").inner_text()
                customer.close()
                seen[lang] = got
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    en, zh = seen["en"], seen["zh"]
    assert en["reference"].startswith("MT") and zh["reference"].startswith("MT")
    assert "reported" in en["message"] and "已提交" in zh["message"]
    assert "福州示例软件有限公司" in en["queue"] and "福州示例软件有限公司" in zh["queue"]
    assert "credited: ¥2,000.00" in en["credited"] and "已入账" in zh["credited"]
    assert "Credited" in en["listing"] and "已入账" in zh["listing"]
    for lang in ("en", "zh"):
        account = owners[lang][0]
        assert BankTransfer.objects.get(account=account).status == "credited"
        assert Account.objects.get(pk=account.pk).balance_fen == 200_000
