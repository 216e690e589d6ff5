"""The whole admin site, checked model by model and page by page (rule 7,
least privilege):

- every action declares the permissions it needs;
- no history page writes anything, whoever posts to it, for every model
  with history (a view-only user used to bring a withdrawn notice back);
- the admin role cannot manage users, groups or permissions; superusers can;
- a crawl from /admin/ as support, finance and admin follows every admin link
  shown on every page it reaches (a seeded world: accounts, subscriptions,
  orders, ledger, notices, calendar, notifications, renewal runs) and finds no
  403, 404 or 500.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, deque
from html import unescape
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from billing import services
from billing.models import Account, AgreementVersion, LedgerEntry, Order, Package, PriceVersion
from complaints.services import complaint_open, complaint_reply
from gateways.reconciliation import statement_import
from invoicing.services import fapiao_issue
from notices import services as notice_services
from notices.models import NonRenewalNotice
from refunds.services import refund_request
from renewals.models import Notification, RenewalRun
from renewals.notifications import queue_reminders
from renewals.services import renewal_scan
from tests.adminforms import staff_login
from transfers.services import transfer_report
from workdays.services import DayEntry

from . import factories
from .gateways.test_statements import ALIPAY

pytestmark = pytest.mark.django_db


# --- a world with one of everything ----------------------------------------------------


@pytest.fixture
def world(catalog, agreement, t0):
    """Accounts with paid, draft, confirmed, cancelled and custom orders, a
    price change, notices (live and withdrawn), a library and a staff calendar
    year, a renewal run with its receipt and reminders."""
    support = factories.make_staff("support_world", group="support")
    finance = factories.make_staff("finance_world", group="finance")
    acme = factories.make_account("Acme", now=t0, balance_fen=50_000)
    acme_order = factories.buy(acme, catalog["pro-monthly"], seats=2, now=t0)
    services.order_place(account=acme, package=catalog["pro-annual"], actor=acme.owner, now=t0)
    beta = factories.make_account("Beta", now=t0)
    confirmed = services.order_confirm(
        order=services.order_place(
            account=beta, package=catalog["pro-annual"], actor=beta.owner, now=t0
        ),
        actor=beta.owner,
        now=t0,
    )
    services.order_cancel(order=confirmed, reason="customer changed their mind", actor=beta.owner)
    custom = services.order_place(
        account=beta,
        package=catalog["custom"],
        kind="custom",
        seats=5,
        agreed_amount_fen=300_000,
        actor=finance,
        now=t0,
    )
    custom = services.order_confirm(order=custom, actor=beta.owner, now=t0)
    services.order_pay(order=custom, channel="other", reference="contract 9", actor=finance, now=t0)
    services.price_change_publish(
        package=catalog["pro-annual"],
        amount_fen=109_000,
        effective_from=t0 + dt.timedelta(days=30),
        actor=finance,
        now=t0,
    )
    # Notices: Acme's is live (given by the customer), Gamma's was recorded by
    # support and withdrawn with a reason.
    acme_sub = acme.subscriptions.get(status="active")
    notice_services.notice_give(
        account=acme,
        subscription=acme_sub,
        channel="account_page",
        actor=acme.owner,
        now=t0 + dt.timedelta(days=1),
    )
    gamma = factories.make_account("Gamma", now=t0, balance_fen=100_000)
    gamma_sub = factories.buy(gamma, catalog["pro-monthly"], now=t0).subscription
    withdrawn = notice_services.notice_give(
        account=gamma,
        subscription=gamma_sub,
        channel="email",
        received_at=t0 + dt.timedelta(days=2),
        reference="<gamma@mail.example>",
        actor=support,
        now=t0 + dt.timedelta(days=2),
    ).notice
    notice_services.notice_withdraw(
        notice=withdrawn,
        account=gamma,
        actor=support,
        reason="The customer wrote again: keep renewing",
        now=t0 + dt.timedelta(days=3),
    )
    # The calendar: 2025 from the library, 2027 entered by staff.
    staff = factories.make_user("calendar_world", is_staff=True, is_superuser=True)
    notice_services.calendar_year_load_from_library(year=2025, actor=staff, now=t0)
    notice_services.calendar_year_enter(
        year=2027,
        days=[DayEntry(dt.date(2027, 1, 1), "off", "New Year's Day")],
        notice_reference="国办发明电〔2026〕N号",
        actor=staff,
        now=t0,
    )
    # Reminders before the deadline, then the renewal run (Gamma renews from its
    # balance, Acme ends on its notice) with the receipts.
    queue_reminders(at=gamma_sub.notice_deadline - dt.timedelta(days=3))
    renewal_scan(at=gamma_sub.current_period_end + dt.timedelta(minutes=1), trigger="command")
    assert RenewalRun.objects.exists() and Notification.objects.count() >= 2
    # An online payment started on the account pages (issue 11), still pending.
    services.online_payment_start(
        account=acme, provider="sandbox", amount_fen=10_000, actor=acme.owner, now=t0
    )
    # A refund request (P1), refused citing clause 1.
    refund_request(
        order=acme_order, actor=acme.owner, reason="world", channel="account_page", now=t0
    )
    # A bank transfer (issue 19), reported by the customer.
    transfer_report(
        account=acme,
        actor=acme.owner,
        amount_fen=10_000,
        transferred_on=t0.date(),
        remitter_name="Acme Ltd.",
        remitter_account="123",
        now=t0,
    )
    # A fapiao request (issue 19), issued by finance.
    fapiao_issue(
        fapiao=factories.fapiao_ask(acme, [acme_order], now=t0),
        actor=finance,
        number="12340001",
        issued_on=t0.date(),
        file_name="f.pdf",
        file_data=factories.FAPIAO_PDF,
        now=t0,
    )
    # A complaint (P6) with a staff reply and an internal note.
    complaint = complaint_open(
        account=acme,
        actor=support,
        channel="email",
        subject="world",
        body="Why was I charged?",
        order=acme_order,
        now=t0,
    )
    complaint_reply(complaint=complaint, actor=support, body="Answer", now=t0)
    complaint_reply(complaint=complaint, actor=support, body="Note", internal=True, now=t0)
    # An Alipay statement (issue 18) whose payment and refund are not ours:
    # a reconciled day and two reconciliation lines.
    statement_import(provider="alipay", data=ALIPAY.encode("gbk"), actor=None, now=t0)
    return {"support": support, "withdrawn": withdrawn}


# --- actions ------------------------------------------------------------------------


def test_every_admin_action_declares_its_permissions():
    missing = []
    for model, model_admin in admin.site._registry.items():
        for func, name, _description in model_admin._get_base_actions():
            if not getattr(func, "allowed_permissions", None):
                missing.append(f"{model._meta.label}: {name}")
    assert missing == []


# --- history pages never write -------------------------------------------------------------


def _history_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, SimpleHistoryAdmin)
    ]


def _snapshot(model, pk):
    return (
        model._default_manager.filter(pk=pk).values().get(),
        model.history.filter(**{model._meta.pk.attname: pk}).count(),
        model.history.count(),
    )


def test_history_form_view_never_writes_for_any_model(admin_client, world):
    """As a superuser: POSTing an old version (the stock "Revert") is refused
    for every model with history, and the row and its history stay as they
    were. GET shows the version read-only (no inputs)."""
    admins = _history_admins()
    labels = {model._meta.label for model, _ in admins}
    assert {"notices.NonRenewalNotice", "workdays.CalendarYear", "billing.Order"} <= labels
    for model, _model_admin in admins:
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"the world has no {model._meta.label}"
        oldest = model.history.filter(**{model._meta.pk.attname: obj.pk}).order_by("history_id")
        version = oldest.first()
        opts = model._meta
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_simple_history",
            args=[obj.pk, version.history_id],
        )
        page = admin_client.get(url)
        assert page.status_code == 200, f"{opts.label}: GET {url}"
        assert list(page.context["adminform"].form.fields) == [], opts.label
        values = {f.attname: getattr(version, f.attname, None) for f in opts.concrete_fields}
        data = {name: "" if value is None else value for name, value in values.items()}
        before = _snapshot(model, obj.pk)
        response = admin_client.post(url, data)
        assert response.status_code == 403, f"{opts.label}: POST {url} -> {response.status_code}"
        assert _snapshot(model, obj.pk) == before, opts.label


def test_view_only_user_cannot_bring_a_withdrawn_notice_back(client, world):
    """The bug: a user with view permission POSTed the version before the
    withdrawal and the notice was live again."""
    notice = world["withdrawn"]
    viewer = factories.make_staff("viewer", group="finance")  # view_nonrenewalnotice only
    staff_login(client, viewer)
    live_version = notice.history.filter(withdrawn_at__isnull=True).order_by("history_id").first()
    url = reverse(
        "admin:notices_nonrenewalnotice_simple_history", args=[notice.pk, live_version.history_id]
    )
    assert client.get(url).status_code == 200
    before = _snapshot(NonRenewalNotice, notice.pk)
    assert client.post(url, {}).status_code == 403
    assert _snapshot(NonRenewalNotice, notice.pk) == before
    notice.refresh_from_db()
    assert notice.withdrawn_at is not None


# --- the admin role and users ---------------------------------------------------------


def test_admin_role_cannot_manage_users_groups_or_permissions(client, db):
    """Only superusers manage users: an admin-group member could otherwise
    make themselves superuser (or add permissions to their own group)."""
    member = factories.make_staff("admin_member", group="admin")
    assert member.has_perm("billing.top_up_balance") and member.has_perm("auth.view_user")
    for perm in ("add_user", "change_user", "delete_user", "change_group", "change_permission"):
        assert not member.has_perm(f"auth.{perm}")
    staff_login(client, member)
    url = reverse("admin:auth_user_change", args=[member.pk])
    page = client.get(url)
    assert page.status_code == 200  # view only: no form fields
    assert "is_superuser" not in page.context["adminform"].form.fields
    data = {
        "username": member.username,
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "date_joined_0": "2025-01-01",
        "date_joined_1": "00:00:00",
    }
    assert client.post(url, data).status_code == 403
    assert client.get(reverse("admin:auth_user_add")).status_code == 403
    password = reverse("admin:auth_user_password_change", args=[member.pk])
    assert client.get(password).status_code == 403
    group = Group.objects.get(name="admin")
    every = list(Permission.objects.values_list("pk", flat=True))
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": "admin", "permissions": every},
    )
    assert response.status_code == 403
    member = get_user_model().objects.get(pk=member.pk)
    assert not member.is_superuser and not member.has_perm("auth.change_user")


def test_superuser_can_grant_superuser(admin_client, db):
    member = factories.make_staff("admin_member2", group="admin")
    url = reverse("admin:auth_user_change", args=[member.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if name in form.fields and value is not None and name not in ("password",)
    }
    data.update(
        {
            "is_superuser": "on",
            "is_staff": "on",
            "is_active": "on",
            "date_joined_0": "2025-01-01",
            "date_joined_1": "00:00:00",
            "groups": [g.pk for g in member.groups.all()],
            "user_permissions": [],
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert get_user_model().objects.get(pk=member.pk).is_superuser


# --- crawl: links shown to support and finance lead somewhere they may go ---------------

HREF = re.compile(r'<a\s[^>]*href="([^"]+)"', re.IGNORECASE)
# Numbers in paths: a few change pages of a model stand for the others; one
# list page per set of query keys (a filter, an ordering, a date level) stands
# for its values. Combinations of more than two keys are not followed.
NUMBER = re.compile(r"/\d+/")
PER_PATH_SHAPE = 3
MAX_QUERY_KEYS = 2
MAX_PAGES = 1000


def _shape(url: str) -> tuple[str, tuple[str, ...]]:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    # Preserved filters only shape the page's links back to its list.
    keys = tuple(sorted({k for k, _ in pairs if k != "_changelist_filters"}))
    return NUMBER.sub("/N/", parts.path), keys


def crawl(client, *, depth: int) -> tuple[dict[str, int], set[str]]:
    """Breadth-first from /admin/ over every <a href> into /admin/ (GET only;
    logout is a form, not a link), a few pages of each shape (``_shape``).
    Returns {url: status} of the pages that were not 200 (after redirects),
    and the pages visited."""
    visited: set[str] = set()
    shapes: Counter = Counter()
    bad: dict[str, int] = {}
    queue = deque([("/admin/", 0)])
    while queue and len(visited) < MAX_PAGES:
        url, level = queue.popleft()
        shape = _shape(url)
        limit = 1 if shape[1] else PER_PATH_SHAPE
        if url in visited or shapes[shape] >= limit or len(shape[1]) > MAX_QUERY_KEYS:
            continue
        shapes[shape] += 1
        visited.add(url)
        response = client.get(url, follow=True)
        if response.status_code != 200:
            bad[url] = response.status_code
            continue
        if level >= depth or "text/html" not in response.get("Content-Type", ""):
            continue
        base = response.request["PATH_INFO"]
        for href in HREF.findall(response.content.decode()):
            href = unescape(href).split("#")[0]
            if not href or href.startswith(("javascript:", "mailto:")):
                continue
            if href.startswith("?"):
                href = base + href
            elif not href.startswith("/"):
                href = (
                    urlsplit(urljoin(f"http://testserver{base}", href))
                    ._replace(scheme="", netloc="")
                    .geturl()
                )
            if href.startswith("/admin/") and not href.startswith("/admin/logout/"):
                queue.append((href, level + 1))
    return bad, visited


@pytest.mark.parametrize("role", ["support", "finance", "admin"])
def test_every_link_shown_leads_to_a_page_the_user_may_open(client, world, role):
    user = (
        world["support"] if role == "support" else factories.make_staff(f"{role}_crawl", group=role)
    )
    staff_login(client, user)
    bad, visited = crawl(client, depth=4)
    print(f"\n{role}: {len(visited)} pages visited")
    assert bad == {}
    # The crawl is only as good as what it reaches.
    reached = {_shape(u)[0] for u in visited}
    expected = {
        "/admin/billing/account/N/change/",
        "/admin/billing/order/N/change/",
        "/admin/billing/subscription/N/change/",
        "/admin/billing/ledgerentry/N/change/",
        "/admin/billing/order/N/history/",
        "/admin/notices/nonrenewalnotice/N/change/",
        "/admin/notices/nonrenewalnotice/N/history/N/",
        "/admin/workdays/calendaryear/N/change/",
        "/admin/renewals/notification/N/change/",
    }
    if role == "finance":
        expected |= {"/admin/renewals/renewalrun/N/change/", "/admin/billing/account/N/top-up/"}
    elif role == "support":
        expected |= {"/admin/notices/nonrenewalnotice/record/"}
    else:  # the admin role looks at users, without the password page
        expected |= {"/admin/auth/user/N/change/", "/admin/django_celery_beat/periodictask/"}
    assert expected <= reached, expected - reached


# --- every role boundary in the admin (issue 10, rule 7) -----------------------------------


def _boundary_objects(world) -> dict:
    from complaints.models import Complaint
    from refunds.models import RefundRequest

    draft = Order.objects.filter(status="draft").order_by("pk").first()
    confirmed = services.order_confirm(order=draft, actor=draft.account.owner)
    return {
        "account": Account.objects.get(name="Acme"),
        "package": Package.objects.get(code="pro-annual"),
        "confirmed_order": confirmed,
        "paid_custom": Order.objects.get(kind="custom", status="paid"),
        "refund": RefundRequest.objects.order_by("pk").first(),
        "notice": NonRenewalNotice.objects.filter(withdrawn_at__isnull=True).first(),
        "complaint": Complaint.objects.order_by("pk").first(),
        "group": Group.objects.get(name="support"),
        None: None,
    }


# (what staff would do, admin URL name, object, roles that may). Support never
# moves money, changes prices or decides refunds; finance does not record
# customers' notices; only the admin role reads login records; nobody but a
# superuser manages staff users or role permissions.
ROLE_BOUNDARIES = [
    ("top up a balance", "billing_account_top_up", "account", {"finance", "admin"}),
    ("publish a price change", "billing_package_publish_price", "package", {"finance", "admin"}),
    (
        "record an offline payment",
        "billing_order_offline_payment",
        "confirmed_order",
        {"finance", "admin"},
    ),
    ("fulfil a custom order", "billing_order_fulfil", "paid_custom", {"finance", "admin"}),
    ("cancel an order", "billing_order_cancel", "confirmed_order", {"finance", "admin"}),
    ("approve a refund", "refunds_approve", "refund", {"finance", "admin"}),
    ("refuse a refund", "refunds_refuse", "refund", {"finance", "admin"}),
    ("pay out a refund", "refunds_pay_out", "refund", {"finance", "admin"}),
    ("publish an agreement version", "billing_agreementversion_add", None, {"admin"}),
    ("record a customer's notice", "notices_nonrenewalnotice_record", None, {"support", "admin"}),
    ("withdraw a notice", "notices_nonrenewalnotice_withdraw", "notice", {"support", "admin"}),
    (
        "open a refund request from a complaint",
        "complaints_refund",
        "complaint",
        {"support", "admin"},
    ),
    ("add a staff user", "auth_user_add", None, set()),
    ("change a role's permissions", "auth_group_change", "group", set()),
    ("read the login records", "axes_accessattempt_changelist", None, {"admin"}),
]


def _written() -> tuple:
    from complaints.models import Complaint
    from refunds.models import RefundRequest

    return (
        LedgerEntry.objects.count(),
        list(Order.objects.order_by("pk").values_list("pk", "status")),
        PriceVersion.objects.count(),
        list(RefundRequest.objects.order_by("pk").values_list("pk", "status")),
        list(NonRenewalNotice.objects.order_by("pk").values_list("pk", "withdrawn_at")),
        list(Complaint.objects.order_by("pk").values_list("pk", "refund_request_id")),
        AgreementVersion.objects.count(),
        get_user_model().objects.count(),
        Group.objects.get(name="support").permissions.count(),
    )


@pytest.mark.parametrize("role", ["support", "finance", "admin"])
def test_every_role_boundary_in_the_admin(client, world, role):
    """Each money or rights page: a role without the permission gets 403 on
    GET and on POST and nothing is written; a role with it reaches the page
    (the services refuse the same actors: tests/billing/test_authz.py)."""
    objects = _boundary_objects(world)
    staff_login(client, factories.make_staff(f"{role}_bounds", group=role))
    for what, name, key, allowed in ROLE_BOUNDARIES:
        obj = objects[key]
        url = reverse(f"admin:{name}", args=[obj.pk] if obj is not None else [])
        status = client.get(url).status_code
        if role in allowed:
            assert status in (200, 302), (what, status)
            continue
        # The admin role may look at a group (view permission), never change it.
        view_only = name == "auth_group_change" and role == "admin"
        assert status == (200 if view_only else 403), (role, what, status)
        before = _written()
        assert client.post(url, {"amount": "100", "reason": "x"}).status_code == 403, what
        assert _written() == before, what
