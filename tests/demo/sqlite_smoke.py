"""The demo on SQLite (``dev.py run``'s embedded default), page by page.

Run by ``tests/demo/test_demo_sqlite.py`` in a subprocess with
``DATABASE_URL=sqlite:///...``: migrates, seeds the demo, then GETs every
admin changelist (plain and with a search) and change page as the demo
superuser, and every customer page as a demo customer. PostgreSQL proves the
rules; this proves the demo's database answers every page (SQLite refuses
some SQL PostgreSQL takes, e.g. LIMIT inside a UNION). Prints
``ok pages=<n>`` or each failing page, exit status 1."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.admin.utils import quote  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from tests.adminforms import staff_login  # noqa: E402

CUSTOMER_PAGES = [
    "/",
    "/agreement/",
    "/account/",
    "/account/balance/",
    "/account/packages/",
    "/account/notice/",
    "/account/members/",
    "/account/complaints/",
    "/account/refunds/",
    "/account/withdraw/",
    "/account/agreement/",
]


def main() -> int:
    assert connection.vendor == "sqlite", connection.vendor
    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    setup_test_environment()
    users = get_user_model().objects
    failures: list[str] = []
    pages = 0

    def get(client: Client, url: str, **params: str) -> None:
        nonlocal pages
        pages += 1
        response = client.get(url, params)
        if response.status_code != 200:
            failures.append(f"{response.status_code} {url} {params or ''}")

    staff = Client()
    staff_login(staff, users.get(username="admin"))
    get(staff, reverse("admin:index"))
    for model in admin.site._registry:
        opts = model._meta
        try:
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:
            continue
        get(staff, changelist)
        if admin.site._registry[model].get_search_fields(None):
            get(staff, changelist, q="a")
            get(staff, changelist, q="1")
        obj = model._default_manager.order_by("-pk").first()
        if obj is not None:
            get(
                staff,
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]),
            )

    customer = Client()
    customer.force_login(users.get(username="lin"))
    for url in CUSTOMER_PAGES:
        get(customer, url)

    for failure in failures:
        print(failure)
    print(f"{'ok' if not failures else 'failed'} pages={pages}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
