"""Helper i11a's customer pages in a real browser (Debian's Chromium through
Playwright), in English and in Chinese (the browser's language): the landing
page, sign-up with the agreement box, the overview of a paid account, and
accepting a new agreement version by click (P0). The Content-Security-Policy
is on: any inline script or style the pages tried would be reported on the
console, and the test fails on it.

Screenshots go to a temporary directory, or to ``I11A_SCREENSHOTS`` when set
(``I11A_SCREENSHOTS=docs/screenshots`` refreshes the committed ones:
31-landing, 32-signup, 33-dashboard, 34-agreement, each -en and -zh)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import EmailConfirmation
from accounts.services import Client, email_confirmation_record
from billing.models import Acceptance, Account
from tests import factories
from tests.test_browser import ARGS, _chromium

PASSWORD = "Plum-tree-42-river"


def _shots(tmp_path_factory) -> Path:
    target = os.environ.get("I11A_SCREENSHOTS")
    if target:
        path = Path(target)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("i11a-screenshots")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_landing_signup_dashboard_and_agreement_in_english_and_chinese(
    live_server, catalog, agreement, tmp_path_factory
):
    now = timezone.now()
    paid = {}
    for lang, name in (("en", "Acme Trading Co."), ("zh", "长江伙伴 Yangtze Partners")):
        account = factories.make_account(name, now=now - dt.timedelta(days=3))
        if lang == "zh":
            Account.objects.filter(pk=account.pk).update(language="zh-hans")
        factories.provider_top_up(account, 4 * 9_900, now=now - dt.timedelta(days=3))
        factories.buy(account, catalog["pro-monthly"], now=now - dt.timedelta(days=3), seats=2)
        email_confirmation_record(
            user=account.owner, email=account.owner.email, client=Client(None, ""), now=now
        )
        paid[lang] = account
    new_version = factories.make_agreement(
        effective_from=now - dt.timedelta(minutes=5), version="2026-11-01"
    )
    shots = _shots(tmp_path_factory)
    base = live_server.url
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
                context = browser.new_context(
                    locale=locale, viewport={"width": 1200, "height": 900}
                )
                page = context.new_page()
                # CSP refusals are console errors; failed loads are checked by
                # response (the browser's own /favicon.ico probe is not ours).
                page.on(
                    "console",
                    lambda msg: (
                        problems.append(msg.text)
                        if (msg.type == "error" and "Failed to load resource" not in msg.text)
                        or "Content Security Policy" in msg.text
                        else None
                    ),
                )
                page.on(
                    "response",
                    lambda r: (
                        problems.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico")
                        else None
                    ),
                )
                got: dict[str, str] = {}
                # 31: what MTlogin sells.
                page.goto(base + "/")
                got["lang"] = page.locator("html").get_attribute("lang") or ""
                got["hero"] = page.locator(".hero h1").inner_text()
                got["offers"] = page.locator(".offer").count()
                got["summary"] = page.locator("#agreement-summary").inner_text()
                page.screenshot(path=str(shots / f"31-landing-{lang}.png"), full_page=True)
                # 32: sign up, first without the box (refused), then with it.
                page.click(".hero .actions a.button")
                page.fill("#id_email", f"new-{lang}@example.com")
                page.fill("#id_account_name", f"New {lang} studio")
                page.fill("#id_password1", PASSWORD)
                page.fill("#id_password2", PASSWORD)
                page.click("main button[type=submit]")
                got["refused"] = page.locator(".field.has-error .error").first.inner_text()
                page.screenshot(path=str(shots / f"32-signup-{lang}.png"), full_page=True)
                page.fill("#id_password1", PASSWORD)
                page.fill("#id_password2", PASSWORD)
                page.check("#id_accepts_agreement")
                page.click("main button[type=submit]")
                # Issue 20: "check your email"; nobody is logged in yet. A
                # login with the password shows the banner until confirmed.
                page.wait_for_selector("#signup-check-email")
                got["welcome"] = page.locator("#signup-check-email").inner_text()
                page.goto(base + "/accounts/login/")
                page.fill("#id_username", f"new-{lang}@example.com")
                page.fill("#id_password", PASSWORD)
                page.click("main button[type=submit]")
                page.wait_for_url(f"{base}/account/")
                got["banner"] = page.locator("#confirm-email-banner").inner_text()
                page.locator("header form.inline button").last.click()  # log out
                page.wait_for_url(f"{base}/")
                # 33: the overview of a paid account.
                page.goto(base + "/accounts/login/")
                page.fill("#id_username", paid[lang].owner.username)
                page.fill("#id_password", "pw")
                page.click("main button[type=submit]")
                page.wait_for_url(f"{base}/account/")
                got["agreement_banner"] = page.locator("#agreement-banner").inner_text()
                got["renewal"] = page.locator("#renewal").inner_text()
                got["balance"] = page.locator("#balance").inner_text()
                page.screenshot(path=str(shots / f"33-dashboard-{lang}.png"), full_page=True)
                # 34: the agreement, accepted by click.
                page.click("#agreement-banner a")
                page.wait_for_url(f"{base}/account/agreement/")
                got["accept_button"] = page.locator("#accept-agreement button").inner_text()
                page.screenshot(path=str(shots / f"34-agreement-{lang}.png"), full_page=False)
                page.click("#accept-agreement button")
                page.wait_for_url(f"{base}/account/agreement/")
                got["accepted"] = page.locator(".message.success").inner_text()
                seen[lang] = got
                context.close()
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    assert problems == []
    en, zh = seen["en"], seen["zh"]
    assert en["lang"] == "en" and zh["lang"] == "zh-hans"
    assert en["hero"] == "MTlogin desktop software"
    assert zh["hero"] != en["hero"] and "MTlogin" in zh["hero"]
    assert en["offers"] == zh["offers"] == 4
    assert "No refund after you confirm a purchase" in en["summary"]
    assert "确认购买后不予退款" in zh["summary"]
    assert "Tick the box to accept the Refund Agreement" in en["refused"]
    assert "请勾选同意退款协议" in zh["refused"]
    assert "Check your email to finish" in en["welcome"]
    assert "请查收邮件以完成注册" in zh["welcome"]
    assert "Please confirm your email address" in en["banner"]
    assert "请确认您的电子邮箱地址" in zh["banner"]
    assert "2026-11-01" in en["agreement_banner"] and "新版退款协议" in zh["agreement_banner"]
    assert "Notice deadline" in en["renewal"] and "23:59" in en["renewal"]
    assert "通知截止时间" in zh["renewal"] and "23:59" in zh["renewal"]
    assert "¥198.00" in en["renewal"] and "198.00 元" in zh["renewal"]
    assert "Covers the next renewal" in en["balance"] and "足够支付下次续费" in zh["balance"]
    assert en["accept_button"] == "I accept version 2026-11-01"
    assert zh["accept_button"] == "我接受 2026-11-01 版"
    assert "you accepted the Refund Agreement, version 2026-11-01" in en["accepted"]
    assert "您已同意退款协议 2026-11-01 版" in zh["accepted"]

    # What the browser did is in the database: two sign-ups with their
    # acceptance (IP and the browser's user agent), two click acceptances.
    for lang in ("en", "zh"):
        owner = Account.objects.get(name=f"New {lang} studio").owner
        signup = Acceptance.objects.get(user=owner)
        assert signup.ip_address == "127.0.0.1" and "Chrome" in signup.user_agent
        clicked = Acceptance.objects.get(account=paid[lang], agreement_version=new_version)
        assert clicked.method == Acceptance.Method.CLICK and "Chrome" in clicked.user_agent
    assert Account.objects.get(name="New zh studio").language == "zh-hans"
    assert not EmailConfirmation.objects.filter(email__startswith="new-").exists()
