"""Issue 19 in a real browser (Debian's Chromium through Playwright), in
English and in Chinese: the customer asks for a special fapiao from an
order's receipt, finance finds it in the queue and issues it with the PDF
uploaded, and the customer sees it issued with its download.

Screenshots go to a temporary directory, or to ``I19_SCREENSHOTS`` when set
(``I19_SCREENSHOTS=docs/screenshots`` refreshes the committed ones:
80-fapiao-request, 81-fapiao-queue, 82-fapiao-issue, 83-fapiao-issued, each
-en and -zh)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from invoicing.models import FapiaoRequest
from tests import factories
from tests.test_browser import ARGS, PASSWORD, _chromium

LANGS = (("en", "en-US"), ("zh", "zh-CN"))


def _shots(tmp_path_factory) -> Path:
    target = os.environ.get("I19_SCREENSHOTS")
    if target:
        path = Path(target)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("i19-screenshots")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_fapiao_asked_for_issued_and_shown_in_english_and_chinese(
    live_server, catalog, agreement, tmp_path_factory
):
    now = timezone.now()
    data = {}
    for lang, _locale in LANGS:
        account = factories.make_account(f"Acme {lang}", now=now, balance_fen=99_000)
        order = factories.buy(account, catalog["pro-annual"], now=now)
        factories.confirm_email(account.owner)
        data[lang] = {"account": account, "order": order, "owner": account.owner.username}
    finance = factories.make_staff("finance-fapiao", group="finance")
    device = TOTPDevice.objects.create(user=finance, name="phone", confirmed=True)
    pdf = tmp_path_factory.mktemp("fapiao") / "fapiao.pdf"
    pdf.write_bytes(factories.FAPIAO_PDF)
    shots = _shots(tmp_path_factory)
    base = live_server.url
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for i, (lang, locale) in enumerate(LANGS):
                d = data[lang]
                got: dict[str, str] = {}
                customer = browser.new_context(
                    locale=locale, viewport={"width": 1200, "height": 900}
                )
                page = customer.new_page()
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", d["owner"])
                page.fill("#id_password", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_load_state()
                page.goto(f"{base}/account/orders/{d['order'].pk}/receipt/")
                got["receipt"] = page.locator("#fapiao").inner_text()
                page.click("#fapiao a.button")
                page.check("input[name=kind][value=special]")
                page.fill("#id_buyer_name", "福州示例软件有限公司")
                page.fill("#id_credit_code", factories.CREDIT_CODE.lower())
                page.fill("#id_buyer_address", "福州市鼓楼区示例路1号")
                page.fill("#id_buyer_phone", "0591-88880000")
                page.fill("#id_buyer_bank", "中国银行福州分行")
                page.fill("#id_buyer_bank_account", "6216610100012345678")
                page.fill("#id_email", f"caiwu-{lang}@example.com")
                page.screenshot(path=str(shots / f"80-fapiao-request-{lang}.png"), full_page=True)
                page.click("main button[type=submit]")
                page.wait_for_url("**/account/fapiao/*/")
                got["requested"] = page.locator("#fapiao-status").inner_text()
                got["amount"] = page.locator("#fapiao-amount").inner_text()
                detail_url = page.url

                staff = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
                admin = staff.new_page()
                admin.goto(f"{base}/admin/login/")
                admin.fill("#id_username", finance.username)
                admin.fill("#id_password", PASSWORD)
                admin.fill("#id_otp_token", factories.next_totp_code(device.pk))
                admin.click("input[type=submit]")
                admin.wait_for_url(f"{base}/admin/")
                admin.goto(f"{base}/admin/invoicing/fapiaorequest/?queue=waiting")
                admin.screenshot(path=str(shots / f"81-fapiao-queue-{lang}.png"), full_page=True)
                got["queue"] = admin.locator("#result_list").inner_text()
                admin.click("#result_list tbody tr:first-child th a")
                admin.click("a:has-text('…')  >> nth=0")
                admin.fill("#id_number", f"2535000000000000{1000 + i}")
                admin.set_input_files("#id_file", str(pdf))
                admin.screenshot(path=str(shots / f"82-fapiao-issue-{lang}.png"), full_page=True)
                admin.click("input[type=submit]")
                admin.wait_for_url("**/change/")
                got["issued_message"] = admin.locator("ul.messagelist li.success").inner_text()
                staff.close()

                page.goto(detail_url)
                got["issued"] = page.locator("#fapiao-status").inner_text()
                got["download"] = page.locator("#fapiao-download").get_attribute("href") or ""
                page.screenshot(path=str(shots / f"83-fapiao-issued-{lang}.png"), full_page=True)
                customer.close()
                seen[lang] = got
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    en, zh = seen["en"], seen["zh"]
    assert "This order can be invoiced for ¥990.00." in en["receipt"]
    assert "此订单可开票金额为 990.00 元。" in zh["receipt"]
    assert (en["requested"], zh["requested"]) == ("Requested", "已申请")
    assert (en["amount"], zh["amount"]) == ("¥990.00", "990.00 元")
    assert "福州示例软件有限公司" in en["queue"] and "VAT special fapiao" in en["queue"]
    assert "增值税专用发票" in zh["queue"]
    assert "issued for request" in en["issued_message"]
    assert "已为申请" in zh["issued_message"]
    assert (en["issued"], zh["issued"]) == ("Issued", "已开具")
    for lang in ("en", "zh"):
        assert seen[lang]["download"].endswith("/file/")
        fapiao = FapiaoRequest.objects.get(account=data[lang]["account"])
        assert (fapiao.status, fapiao.kind, fapiao.credit_code) == (
            "issued",
            "special",
            factories.CREDIT_CODE,
        )
        assert bytes(fapiao.file_data) == factories.FAPIAO_PDF
