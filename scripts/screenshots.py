#!/usr/bin/env python3
"""Full-page screenshots of the billing admin in English and Chinese, for
docs/screenshots/ (run by hand; rule 9: look at them).

Each page is taken twice: with the browser asking for English (locale en-US)
and for Chinese (zh-CN), as ``NN-name-en.png`` and ``NN-name-zh.png``. Needs a
running demo server with seed_demo loaded, e.g.:

    export DEBUG=true ENV_FILE= DATABASE_URL=sqlite:////tmp/demo/demo.sqlite3
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py seed_demo
    .venv/bin/python manage.py runserver 127.0.0.1:8012 --noreload &
    .venv/bin/python scripts/screenshots.py --base http://127.0.0.1:8012

and Debian's Chromium with a Chinese font (apt-get install chromium
fonts-wqy-microhei). Playwright (in requirements-dev.txt) drives it; it
downloads no browser of its own.

Issue 10: the index dashboard (01), the account 360 page (02, and as
support 02-account-360-support) and the notice form opened from the
account's button with its preview (08).

It records one non-renewal notice (support, by email) so that the
subscription page shows a notice and the withdraw form has one to withdraw;
it submits nothing else (the large top-up and the price change stop at their
second step).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import re
import struct
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LANGUAGES = {"en": "en-US", "zh": "zh-CN"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
# What support types as the reason, in the language they work in.
WITHDRAW_REASON = {
    "en": "Customer's email of 2026-11-27 (CAF-43) asks to keep renewing.",
    "zh": "客户 2026-11-27 来信（CAF-43）要求继续自动续费。",
}


# The demo's second factor (seed_demo's DEMO_TOTP_KEYS, base32): finance and
# admin log in with a TOTP code as well as their password (issue 10).
DEMO_TOTP = {
    "finance": "MZUW4YLOMNSS2ZDFNVXS25DPORYC2MRQ",
    "admin": "MFSG22LOFVSGK3LPFV2G65DQFVVWK6JB",
}
_used_steps: dict[str, int] = {}


def totp_code(secret: str, user: str) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s), waiting for a fresh step when this
    user's last login used the current one (the server refuses a replayed code)."""
    while int(time.time()) // 30 <= _used_steps.get(user, -1):
        time.sleep(1)
    step = int(time.time()) // 30
    _used_steps[user] = step
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def log_in(browser: Browser, base: str, locale: str, user: str, password: str) -> Page:
    # Staff work in China: the browser's clock is Beijing time, as the server's.
    context = browser.new_context(
        locale=locale, timezone_id="Asia/Shanghai", viewport={"width": 1400, "height": 900}
    )
    page = context.new_page()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    if user in DEMO_TOTP:
        page.fill("#id_otp_token", totp_code(DEMO_TOTP[user], user))
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    return page


def open_row(page: Page, url: str, text: str) -> str:
    """Open the change page of the changelist row whose link shows ``text``."""
    page.goto(url)
    page.locator("#result_list tbody tr th a", has_text=text).first.click()
    page.wait_for_load_state()
    return page.url.split("?")[0]


def submit(page: Page) -> None:
    page.locator("form input[type=submit]").last.click()
    page.wait_for_load_state()


class Shots:
    def __init__(self, lang: str):
        self.lang = lang

    def __call__(self, page: Page, name: str, *, full_page: bool = True) -> None:
        path = OUT / f"{name}-{self.lang}.png"
        page.screenshot(path=str(path), full_page=full_page)
        print(f"saved {path.relative_to(OUT.parent.parent)}")


def record_notice(browser: Browser, base: str, *, sub_id: str, received: dt.datetime) -> str:
    """Support records a notice received by email for subscription ``sub_id``;
    returns the notice's change page (an existing notice if already recorded)."""
    page = log_in(browser, base, "en-US", "support", "support-demo")
    fill_notice_form(page, base, sub_id=sub_id, received=received, reference="<CAF-42@mail>")
    page.locator("input[name=_preview]").click()
    page.wait_for_load_state()
    page.locator("input[name=_confirm]").click()
    page.wait_for_url(re.compile(r".*/nonrenewalnotice/\d+/change/$"))
    url = page.url
    page.context.close()
    return url


def fill_notice_form(page: Page, base: str, *, sub_id: str, received: dt.datetime, reference: str):
    # The link the subscription page's "Record a non-renewal notice" button opens.
    page.goto(f"{base}/admin/notices/nonrenewalnotice/record/?subscription={sub_id}")
    fill_notice_fields(page, received=received, reference=reference)


def fill_notice_fields(page: Page, *, received: dt.datetime, reference: str) -> None:
    page.locator("#id_received_at_0").fill(f"{received:%Y-%m-%d}")
    page.locator("#id_received_at_1").fill(f"{received:%H:%M:%S}")
    page.select_option("#id_channel", "email")
    page.fill("#id_reference", reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8012")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin-demo")
    opts = parser.parse_args()
    base = opts.base.rstrip("/")
    OUT.mkdir(parents=True, exist_ok=True)
    # The notices are received an hour ago, Beijing time (on time for the demo's periods).
    received = dt.datetime.now(SHANGHAI).replace(microsecond=0) - dt.timedelta(hours=1)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=opts.chromium, args=ARGS)

        # Ids the pages need, found once (in English).
        page = log_in(browser, base, "en-US", opts.user, opts.password)
        account_url = open_row(page, f"{base}/admin/billing/account/?q=Acme", "Acme Trading Co.")
        package_url = open_row(page, f"{base}/admin/billing/package/", "pro-monthly")
        order_url = open_row(
            page, f"{base}/admin/billing/order/?status__exact=fulfilled&q=Dragon", "#"
        )
        harbor_sub_url = open_row(
            page, f"{base}/admin/billing/subscription/?q=Harbor&status__exact=active", "Harbor"
        )
        year = dt.datetime.now(SHANGHAI).year
        calendar_url = open_row(page, f"{base}/admin/workdays/calendaryear/", str(year))
        page.context.close()
        harbor_id = re.search(r"/subscription/(\d+)/change", harbor_sub_url).group(1)
        notice_url = record_notice(browser, base, sub_id=harbor_id, received=received)

        for lang, locale in LANGUAGES.items():
            shot = Shots(lang)
            page = log_in(browser, base, locale, opts.user, opts.password)

            # Issue 10: the index is a dashboard (figures, the 12-month chart, the apps).
            page.goto(f"{base}/admin/")
            shot(page, "01-admin-index")

            # Issue 10: the account 360 page.
            page.goto(account_url)
            shot(page, "02-account")

            page.goto(account_url.replace("/change/", "/top-up/"))
            page.fill("#id_amount", "500")
            page.select_option("#id_channel", "offline")
            page.fill("#id_reference", "ICBC-20261126-0001")
            shot(page, "03-top-up-form")

            # Item 9: above the threshold the amount is confirmed a second time, in words.
            page.fill("#id_amount", "60,000.00")
            submit(page)
            shot(page, "04-top-up-second-confirmation")

            # P4: a price change shows its impact on renewals before it is published.
            page.goto(package_url.replace("/change/", "/publish-price/"))
            page.fill("#id_amount", "139")
            page.fill("#id_effective_from", f"{year + 1}-02-01T00:00")
            submit(page)
            shot(page, "05-price-change-preview")

            page.goto(order_url)
            shot(page, "06-order")

            # P5: the subscription with its notice state (a notice was recorded above).
            page.goto(harbor_sub_url)
            shot(page, "07-subscription-with-notice")

            page.goto(calendar_url)
            shot(page, "10-calendar-year", full_page=False)  # the year and its first days

            page.goto(f"{base}/admin/renewals/notification/")
            shot(page, "11-notifications")
            page.context.close()

            # Support: the account 360 page, then record a notice from its button
            # (the preview names the account, package, expiry, deadline, on time
            # or late, and any notice already recorded), and the withdraw form of
            # the notice recorded above.
            support = log_in(browser, base, locale, "support", "support-demo")
            support.goto(account_url)
            shot(support, "02-account-360-support")
            support.locator("#account360-record-notice").click()
            support.wait_for_load_state()
            fill_notice_fields(support, received=received, reference="<CAF-77@mail>")
            support.locator("input[name=_preview]").click()
            support.wait_for_load_state()
            shot(support, "08-notice-preview")

            support.goto(notice_url.replace("/change/", "/withdraw/"))
            support.fill("#id_reason", WITHDRAW_REASON[lang])
            shot(support, "09-notice-withdraw-form")
            support.context.close()

        browser.close()


if __name__ == "__main__":
    main()
