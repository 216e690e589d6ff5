#!/usr/bin/env python3
"""Full-page screenshots of the billing admin, for docs/screenshots/ (run by hand).

Needs a running demo server with seed_demo loaded, e.g.:

    export DEBUG=true DATABASE_URL=sqlite:////tmp/demo.sqlite3
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py seed_demo
    .venv/bin/python manage.py runserver 127.0.0.1:8012 --noreload &
    .venv/bin/python scripts/screenshots.py --base http://127.0.0.1:8012

and a Chromium (Debian: apt-get install chromium). Playwright (in
requirements-dev.txt) drives it; it downloads no browser of its own.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def open_row(page: Page, base: str, changelist: str, text: str) -> str:
    """Open the change page of the changelist row whose link shows ``text``."""
    page.goto(f"{base}/admin/billing/{changelist}/?q={text.split()[0]}")
    page.locator("#result_list tbody tr th a", has_text=text).first.click()
    page.wait_for_load_state()
    return page.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8012")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin-demo")
    parser.add_argument("--received-date", default="2026-11-26", help="YYYY-MM-DD of the notice")
    opts = parser.parse_args()
    base = opts.base.rstrip("/")
    OUT.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=opts.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", opts.user)
        page.fill("#id_password", opts.password)
        page.click("input[type=submit]")
        page.wait_for_url(re.compile(r".*/admin/$"))

        def shot(name: str) -> None:
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
            print(f"saved docs/screenshots/{name}.png")

        shot("01-admin-index")

        page.goto(f"{base}/admin/billing/account/")
        shot("06-account-list")

        account_url = open_row(page, base, "account", "Acme Trading Co.")
        shot("02-account-change")

        open_row(page, base, "account", "Harbor Logistics Ltd.")
        shot("07-account-provisional-deadline")

        page.goto(f"{base}/admin/billing/order/?status__exact=fulfilled&q=Dragon")
        page.locator("#result_list tbody tr th a").first.click()
        page.wait_for_load_state()
        shot("03-order-change")

        top_up_url = account_url.rstrip("/").rsplit("/change", 1)[0] + "/top-up/"
        page.goto(top_up_url)
        page.fill("#id_amount", "500")
        page.select_option("#id_channel", "offline")
        page.fill("#id_reference", "ICBC-20261126-0001")
        shot("04-top-up-form")

        page.fill("#id_amount", "-20")
        page.fill("#id_reference", "")
        page.click("input[type=submit]")
        page.wait_for_load_state()
        shot("05-top-up-error")

        # P5: the subscription page with its notice state, as support sees it.
        page.goto(f"{base}/admin/billing/subscription/?q=Acme&status__exact=active")
        page.locator("#result_list tbody tr th a").first.click()
        page.wait_for_load_state()
        sub_id = re.search(r"/subscription/(\d+)/change", page.url).group(1)
        shot("08-subscription-change")

        page.goto(f"{base}/admin/renewals/renewalrun/")
        shot("11-renewal-runs")
        page.goto(f"{base}/admin/renewals/notification/")
        shot("12-notifications")
        page.goto(f"{base}/admin/workdays/calendaryear/")
        shot("13-calendar-years")

        # Support records an emailed notice: preview first (deadline, on time or late).
        support = browser.new_page(viewport={"width": 1500, "height": 900})
        support.goto(f"{base}/admin/login/")
        support.fill("#id_username", "support")
        support.fill("#id_password", "support-demo")
        support.click("input[type=submit]")
        support.wait_for_url(re.compile(r".*/admin/$"))
        support.goto(f"{base}/admin/notices/nonrenewalnotice/record/?subscription={sub_id}")
        support.locator("#id_received_at_0").fill(opts.received_date)
        support.locator("#id_received_at_1").fill("09:30:00")
        support.select_option("#id_channel", "email")
        support.fill("#id_reference", "<CAF-20261126-42@mail.example.com>")
        support.locator("input[type=submit]").first.click()
        support.wait_for_load_state()
        support.screenshot(path=str(OUT / "09-record-notice-preview.png"), full_page=True)
        print("saved docs/screenshots/09-record-notice-preview.png")
        support.locator("input[name=_confirm]").click()
        support.wait_for_load_state()
        support.screenshot(path=str(OUT / "10-notice-recorded.png"), full_page=True)
        print("saved docs/screenshots/10-notice-recorded.png")

        browser.close()


if __name__ == "__main__":
    main()
