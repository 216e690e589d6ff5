"""Issue 20's customer pages in a real browser (Debian's Chromium through
Playwright), in English and in Chinese (the browser's language): the answer
to every sign-up ("check your email to finish"), the site's own 404 page and
the 429 page of a throttled sign-up, all in the site's layout under the
Content-Security-Policy (a refused inline script or style fails the test).

Screenshots go to a temporary directory, or to ``I20_SCREENSHOTS`` when set
(``I20_SCREENSHOTS=docs/screenshots`` refreshes the committed ones:
35-signup-check-email, 36-not-found, 37-throttled, each -en and -zh)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_browser import ARGS, _chromium

PASSWORD = "Plum-tree-42-river"


def _shots(tmp_path_factory) -> Path:
    target = os.environ.get("I20_SCREENSHOTS")
    if target:
        path = Path(target)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("i20-screenshots")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_check_email_not_found_and_throttled_pages_in_english_and_chinese(
    live_server, catalog, agreement, settings, tmp_path_factory
):
    settings.THROTTLE_SIGNUP_PER_ADDRESS = "1/h"
    shots = _shots(tmp_path_factory)
    base = live_server.url
    executable = _chromium()

    from playwright.sync_api import sync_playwright

    seen: dict[str, dict[str, object]] = {}
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
                context = browser.new_context(
                    locale=locale, viewport={"width": 1200, "height": 800}
                )
                page = context.new_page()
                page.on(
                    "console",
                    lambda msg: (
                        problems.append(msg.text) if "Content Security Policy" in msg.text else None
                    ),
                )
                got: dict[str, object] = {}

                def sign_up(_page=page, _lang=lang):
                    _page.goto(base + "/accounts/signup/")
                    _page.fill("#id_email", f"i20-{_lang}@example.com")
                    _page.fill("#id_account_name", f"Studio {_lang}")
                    _page.fill("#id_password1", PASSWORD)
                    _page.fill("#id_password2", PASSWORD)
                    _page.check("#id_accepts_agreement")
                    with _page.expect_response(lambda r: r.request.method == "POST") as answer:
                        _page.click("main button[type=submit]")
                    return answer.value.status

                # 35: the answer to a sign-up.
                got["signup_status"] = sign_up()
                got["check_email"] = page.locator("#signup-check-email").inner_text()
                page.screenshot(path=str(shots / f"35-signup-check-email-{lang}.png"))
                # 36: a page that does not exist.
                response = page.goto(base + "/no/such/page/")
                got["not_found_status"] = response.status if response else 0
                got["not_found"] = page.locator("#error-page").inner_text()
                got["lang"] = page.locator("html").get_attribute("lang")
                page.screenshot(path=str(shots / f"36-not-found-{lang}.png"))
                # 37: the same address again within the hour (1/h here).
                got["throttled_status"] = sign_up()
                got["throttled"] = page.locator("#throttled").inner_text()
                page.screenshot(path=str(shots / f"37-throttled-{lang}.png"))
                seen[lang] = got
                context.close()
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")

    assert problems == []
    en, zh = seen["en"], seen["zh"]
    assert en["signup_status"] == zh["signup_status"] == 200
    assert en["not_found_status"] == zh["not_found_status"] == 404
    assert en["throttled_status"] == zh["throttled_status"] == 429
    assert en["lang"] == "en" and zh["lang"] == "zh-hans"
    assert "Check your email to finish" in en["check_email"]
    assert "i20-en@example.com" in en["check_email"]
    assert "请查收邮件以完成注册" in zh["check_email"]
    assert "Page not found" in en["not_found"] and "找不到页面" in zh["not_found"]
    assert "Too many sign-ups" in en["throttled"] and "Try again in" in en["throttled"]
    assert "尝试次数过多" in zh["throttled"]
