"""The staff admin: every page loads, money moves only through the action pages
(which call the services), support cannot move money, bad input writes nothing."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import (
    Acceptance,
    Account,
    AccountMember,
    AgreementVersion,
    LedgerEntry,
    Order,
    Package,
    PriceVersion,
    Subscription,
)
from billing.roles import setup_roles
from tests.adminforms import staff_login

from .. import factories
from ..adminforms import money_post, page_token

pytestmark = pytest.mark.django_db

MODELS = [
    Account,
    AccountMember,
    Package,
    PriceVersion,
    Subscription,
    Order,
    LedgerEntry,
    AgreementVersion,
    Acceptance,
]


def _counts():
    return (
        LedgerEntry.objects.count(),
        PriceVersion.objects.count(),
        Order.objects.filter(status="draft").count(),
        Order.objects.filter(status="confirmed").count(),
        Order.objects.filter(status="paid").count(),
        Order.objects.filter(status="fulfilled").count(),
        Order.objects.filter(status="cancelled").count(),
        Subscription.objects.count(),
        sum(Account.objects.values_list("balance_fen", flat=True)),
    )


def _staff(username, group):
    setup_roles()
    user = get_user_model().objects.create_user(username=username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def finance(db):
    return _staff("fin", "finance")


@pytest.fixture
def support(db):
    return _staff("sup", "support")


@pytest.fixture
def finance_client(client, finance):
    staff_login(client, finance)
    return client


@pytest.fixture
def support_client(client, support):
    staff_login(client, support)
    return client


@pytest.fixture
def world(catalog, agreement, finance, t0):
    """One of everything: a fulfilled order with ledger, a draft, a confirmed, a paid custom."""
    acme = factories.make_account("Acme", now=t0, balance_fen=50_000)
    fulfilled = factories.buy(acme, catalog["pro-monthly"], seats=2, now=t0)
    draft = services.order_place(
        account=acme, package=catalog["pro-annual"], actor=acme.owner, now=t0
    )
    other = factories.make_account("Beta", now=t0)
    confirmed = services.order_confirm(
        order=services.order_place(
            account=other, package=catalog["pro-annual"], actor=other.owner, now=t0
        ),
        actor=other.owner,
        now=t0,
    )
    custom = services.order_place(
        account=other,
        package=catalog["custom"],
        kind="custom",
        seats=5,
        agreed_amount_fen=300_000,
        actor=finance,
        now=t0,
    )
    custom = services.order_confirm(order=custom, actor=other.owner, now=t0)
    custom = services.order_pay(
        order=custom, channel="other", reference="contract 9", actor=finance, now=t0
    )
    return {
        "acme": Account.objects.get(pk=acme.pk),
        "beta": Account.objects.get(pk=other.pk),
        "fulfilled": fulfilled,
        "draft": draft,
        "confirmed": confirmed,
        "custom_paid": custom,
        "monthly": catalog["pro-monthly"],
    }


def _url(name, obj):
    return reverse(f"admin:billing_{name}", args=[obj.pk])


# --- every page loads ---------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_load_for_superuser(admin_client, world, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "Acme"}).status_code == 200
    obj = model.objects.order_by("pk").first()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert admin_client.get(change).status_code == 200
    if hasattr(model, "history"):
        history = reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk])
        assert admin_client.get(history).status_code == 200


def test_admin_index_loads(admin_client, world):
    assert admin_client.get(reverse("admin:index")).status_code == 200


def test_account_page_shows_balance_subscription_and_recent_rows(admin_client, world):
    acme = world["acme"]
    html = admin_client.get(_url("account_change", acme)).content.decode()
    assert "¥302.00" in html  # 500.00 topped up - 2 seats x 99.00
    assert "Pro monthly (pro-monthly)" in html
    assert "Expiry date" in html and "2025-04-03" in html
    assert "Non-renewal notice deadline" in html and "2025-04-01 23:59:59" in html
    assert f"Order #{world['fulfilled'].pk}" in html
    # The account 360 page (backoffice.admin.accounts) lists the latest entries.
    assert 'id="account360-ledger"' in html
    assert "-¥198.00" in html


def test_provisional_deadline_is_marked(admin_client, catalog, agreement):
    """A deadline in a year without official data is flagged where it is shown."""
    now = dt.datetime(2099, 3, 2, 10, tzinfo=dt.UTC)
    acct = factories.make_account("Future", now=now, balance_fen=9_900)
    factories.buy(acct, catalog["pro-monthly"], now=now)
    html = admin_client.get(_url("account_change", acct)).content.decode()
    assert "provisional" in html


def test_order_page_shows_frozen_price_timeline_and_ledger(admin_client, world):
    order = world["fulfilled"]
    html = admin_client.get(_url("order_change", order)).content.decode()
    assert "¥198.00" in html  # frozen amount
    assert "¥99.00 per seat and period" in html
    assert "Confirmed (not refundable from here, P1)" in html
    assert "Fulfilled" in html
    assert "Ledger entries of this order" in html


def test_ledger_is_view_only_even_for_superuser(admin_client, world):
    entry = LedgerEntry.objects.first()
    before = _counts()
    assert admin_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    change = _url("ledgerentry_change", entry)
    assert admin_client.post(change, {"amount_fen": 1}).status_code == 403
    assert admin_client.post(_url("ledgerentry_delete", entry), {"post": "yes"}).status_code == 403
    assert _counts() == before


def test_order_fields_cannot_be_edited(admin_client, world):
    order = world["draft"]
    before = _counts()
    assert admin_client.post(_url("order_change", order), {"status": "paid"}).status_code == 403
    assert admin_client.post(_url("order_delete", order), {"post": "yes"}).status_code == 403
    assert _counts() == before


def test_history_revert_is_refused(admin_client, world):
    acme = world["acme"]
    version = acme.history.order_by("history_id").first()
    url = reverse("admin:billing_account_simple_history", args=[acme.pk, version.history_id])
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"name": "Reverted"}).status_code == 403
    acme.refresh_from_db()
    assert acme.name == "Acme" and acme.balance_fen == 30_200


def test_account_profile_edit_does_not_write_the_balance(admin_client, world, finance):
    """Saving the name writes only the name: a stale balance is never written back."""
    acme = world["acme"]
    page = admin_client.get(_url("account_change", acme))
    form = page.context["adminform"].form
    data = {"name": "Acme Holdings", "email": acme.email, "language": "zh-hans"}
    for formset in page.context["inline_admin_formsets"]:
        mgmt = formset.formset.management_form
        for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"):
            data[mgmt.add_prefix(name)] = mgmt[name].value()
    assert set(form.fields) == {"name", "email", "language"}
    # A top-up lands after the page was loaded.
    services.balance_top_up(
        account=acme, amount_fen=100, channel="offline", reference="ICBC-LATE", actor=finance
    )
    response = admin_client.post(_url("account_change", acme), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    acme.refresh_from_db()
    assert (acme.name, acme.language, acme.balance_fen) == ("Acme Holdings", "zh-hans", 30_300)


# --- top up ---------------------------------------------------------------------


def test_finance_tops_up(finance_client, finance, world):
    acme = world["acme"]
    url = _url("account_top_up", acme)
    assert finance_client.get(url).status_code == 200
    response = money_post(
        finance_client,
        url,
        {"amount": "123.45", "channel": "offline", "reference": " ICBC-77 ", "memo": "wire"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == _url("account_change", acme)
    assert "Topped up ¥123.45 to Acme. Balance now ¥425.45." in response.content.decode()
    acme.refresh_from_db()
    assert acme.balance_fen == 30_200 + 12_345
    entry = LedgerEntry.objects.latest("pk")
    assert (entry.kind, entry.amount_fen, entry.reference, entry.created_by) == (
        "top_up",
        12_345,
        "ICBC-77",
        finance,
    )


def test_top_up_tool_shown_to_finance_only(finance_client, world, client, support):
    acme = world["acme"]
    assert "Top up balance" in finance_client.get(_url("account_change", acme)).content.decode()
    staff_login(client, support)
    page = client.get(_url("account_change", acme))
    assert page.status_code == 200
    assert "Top up balance" not in page.content.decode()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"amount": "0"}, "greater than zero"),
        ({"amount": "-5"}, "greater than zero"),
        ({"amount": "abc"}, "Enter the amount in yuan as a number"),
        ({"amount": ""}, "This field is required"),
        ({"amount": "1.234"}, "at most 2 decimals"),
        ({"amount": "NaN"}, "Enter the amount in yuan as a number"),
        ({"amount": "100", "channel": "offline", "reference": "  "}, "bank reference"),
        ({"amount": "100", "channel": "balance"}, "Select a valid choice"),
        # Item 8: online money comes from the provider's confirmation, not from staff.
        ({"amount": "100", "channel": "online"}, "Select a valid choice"),
    ],
)
def test_top_up_bad_input_reshows_form(finance_client, world, data, message):
    acme = world["acme"]
    before = _counts()
    response = money_post(
        finance_client,
        _url("account_top_up", acme),
        {"channel": "offline", "reference": "ICBC-X", **data},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "Please correct the error" in response.content.decode()
    assert _counts() == before


def test_support_cannot_top_up(support_client, world):
    acme = world["acme"]
    before = _counts()
    url = _url("account_top_up", acme)
    assert support_client.get(url).status_code == 403
    response = support_client.post(url, {"amount": "100", "channel": "online"})
    assert response.status_code == 403
    # The changelist action is not offered either.
    changelist = reverse("admin:billing_account_changelist")
    response = support_client.post(
        changelist, {"action": "top_up_action", "_selected_action": [acme.pk]}, follow=True
    )
    assert response.redirect_chain == []
    assert "Top up balance" not in response.content.decode()
    assert _counts() == before


def test_top_up_action_redirects_one_and_refuses_many(finance_client, world):
    changelist = reverse("admin:billing_account_changelist")
    acme, beta = world["acme"], world["beta"]
    response = finance_client.post(
        changelist, {"action": "top_up_action", "_selected_action": [acme.pk]}
    )
    assert response.status_code == 302
    assert response["Location"] == _url("account_top_up", acme)
    response = finance_client.post(
        changelist, {"action": "top_up_action", "_selected_action": [acme.pk, beta.pk]}, follow=True
    )
    assert "Select exactly one account" in response.content.decode()


# --- offline payment --------------------------------------------------------------


def test_finance_records_offline_payment(finance_client, world):
    order = world["confirmed"]
    response = money_post(
        finance_client,
        _url("order_offline_payment", order),
        {"bank_reference": "ICBC-2026-1"},
        follow=True,
    )
    assert "Recorded the offline payment of ¥990.00" in response.content.decode()
    order.refresh_from_db()
    assert (order.status, order.channel, order.external_reference) == (
        "fulfilled",
        "offline",
        "ICBC-2026-1",
    )
    assert LedgerEntry.objects.filter(order=order).count() == 2


@pytest.mark.parametrize(
    "which, data, message",
    [
        ("confirmed", {"bank_reference": ""}, "Enter the bank reference"),
        ("confirmed", {"bank_reference": "   "}, "Enter the bank reference"),
        ("draft", {"bank_reference": "ICBC-9"}, "not confirmed yet"),
        ("fulfilled", {"bank_reference": "ICBC-9"}, "cannot become paid"),
    ],
)
def test_offline_payment_bad_input(finance_client, world, which, data, message):
    before = _counts()
    response = money_post(finance_client, _url("order_offline_payment", world[which]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _counts() == before


def test_support_cannot_record_offline_payment(support_client, world):
    order = world["confirmed"]
    before = _counts()
    url = _url("order_offline_payment", order)
    assert support_client.get(url).status_code == 403
    assert support_client.post(url, {"bank_reference": "ICBC-1"}).status_code == 403
    response = support_client.post(
        reverse("admin:billing_order_changelist"),
        {"action": "record_offline_payment_action", "_selected_action": [order.pk]},
        follow=True,
    )
    assert response.redirect_chain == []
    assert "Record offline payment" not in response.content.decode()
    assert _counts() == before


# --- price change -----------------------------------------------------------------


def _local(delta):
    return (timezone.localtime() + delta).strftime("%Y-%m-%dT%H:%M")


def test_finance_publishes_price_change(finance_client, finance, world):
    """P4: the first submit previews the impact and writes nothing; the
    confirming submit (same page, same token) publishes."""
    package = world["monthly"]
    url = _url("package_publish_price", package)
    token = page_token(finance_client, url)
    data = {"amount": "129", "effective_from": _local(dt.timedelta(days=10)), "form_token": token}
    before = PriceVersion.objects.count()
    preview = finance_client.post(url, data)
    body = preview.content.decode()
    assert preview.status_code == 200
    assert "Publishing pro-monthly at ¥129.00 per seat and period:" in body
    assert "auto-renewing subscription" in body and "keep the old price one more cycle" in body
    assert 'name="previewed" value="True"' in body and 'value="Publish ¥129.00"' in body
    assert PriceVersion.objects.count() == before
    response = finance_client.post(url, {**data, "previewed": "True"}, follow=True)
    assert "Published pro-monthly: ¥129.00 per seat and period" in response.content.decode()
    version = PriceVersion.objects.latest("pk")
    assert (version.amount_fen, version.published_by) == (12_900, finance)
    assert version.effective_from > timezone.now()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"amount": "0", "effective_from": "+"}, "greater than zero"),
        ({"amount": "-1", "effective_from": "+"}, "greater than zero"),
        ({"amount": "twelve", "effective_from": "+"}, "Enter the amount in yuan as a number"),
        ({"amount": "129", "effective_from": "-"}, "must take effect in the future"),
        ({"amount": "129", "effective_from": "next week"}, "Enter a date and time"),
        ({"amount": "129", "effective_from": ""}, "Enter when the new price takes effect"),
    ],
)
def test_price_change_bad_input(finance_client, world, data, message):
    marks = {"+": _local(dt.timedelta(days=3)), "-": _local(-dt.timedelta(days=1))}
    data = {**data, "effective_from": marks.get(data["effective_from"], data["effective_from"])}
    before = _counts()
    response = money_post(finance_client, _url("package_publish_price", world["monthly"]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _counts() == before


def test_price_change_on_free_package_is_refused(finance_client, world):
    free = Package.objects.get(kind="free")
    before = _counts()
    response = money_post(
        finance_client,
        _url("package_publish_price", free),
        {"amount": "1", "effective_from": _local(dt.timedelta(days=3))},
    )
    assert "free package has no price" in response.content.decode()
    assert _counts() == before


def test_support_cannot_publish_price_change(support_client, world):
    before = _counts()
    url = _url("package_publish_price", world["monthly"])
    assert support_client.get(url).status_code == 403
    data = {"amount": "129", "effective_from": _local(dt.timedelta(days=3))}
    assert support_client.post(url, data).status_code == 403
    assert _counts() == before


# --- fulfil and cancel ---------------------------------------------------------------


def test_fulfil_custom_needs_a_note(finance_client, world):
    order = world["custom_paid"]
    url = _url("order_fulfil", order)
    before = _counts()
    response = money_post(finance_client, url, {"note": "  "})
    assert response.status_code == 200
    assert "Describe what was provided" in response.content.decode()
    assert _counts() == before
    response = money_post(finance_client, url, {"note": "5 seats, SSO set up"}, follow=True)
    assert "fulfilled" in response.content.decode()
    order.refresh_from_db()
    assert (order.status, order.fulfilment_note) == ("fulfilled", "5 seats, SSO set up")


def test_cancel_unpaid_and_refuse_paid(finance_client, world):
    draft = world["draft"]
    response = money_post(
        finance_client, _url("order_cancel", draft), {"reason": "duplicate"}, follow=True
    )
    assert f"Order #{draft.pk} cancelled." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "cancelled"
    paid = world["fulfilled"]
    before = _counts()
    response = money_post(finance_client, _url("order_cancel", paid), {"reason": "x"})
    assert response.status_code == 200
    assert "clause 1" in response.content.decode()
    assert _counts() == before


def test_support_cannot_fulfil_or_cancel(support_client, world):
    before = _counts()
    assert (
        support_client.post(_url("order_fulfil", world["custom_paid"]), {"note": "x"}).status_code
        == 403
    )
    assert support_client.post(_url("order_cancel", world["draft"]), {}).status_code == 403
    assert _counts() == before


# --- roles -----------------------------------------------------------------------------


def test_roles_least_privilege_and_idempotent(db):
    setup_roles()
    first = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    setup_roles()
    again = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    assert first == again
    support = _staff("s2", "support")
    finance = _staff("f2", "finance")
    money = ["billing.top_up_balance", "billing.record_offline_payment"]
    money += ["billing.publish_price_change", "billing.fulfil_order", "billing.cancel_order"]
    money += ["billing.add_order"]
    assert not any(support.has_perm(p) for p in money)
    assert all(finance.has_perm(p) for p in money)
    assert support.has_perm("billing.view_ledgerentry")
    assert not support.has_perm("billing.change_account")


# --- no N+1 on the busy lists ------------------------------------------------------------


def _list_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_account_and_order_changelists_have_no_n_plus_1(
    admin_client, catalog, agreement, t0, django_assert_max_num_queries
):
    def grow(n):
        for i in range(n):
            acct = factories.make_account(f"Bulk {i}", now=t0, balance_fen=20_000)
            factories.buy(acct, catalog["pro-monthly"], now=t0)
            services.order_place(
                account=acct, package=catalog["pro-annual"], actor=acct.owner, now=t0
            )

    accounts = reverse("admin:billing_account_changelist")
    orders = reverse("admin:billing_order_changelist")
    grow(3)
    small = (_list_queries(admin_client, accounts), _list_queries(admin_client, orders))
    grow(12)
    large = (_list_queries(admin_client, accounts), _list_queries(admin_client, orders))
    print(f"\nchangelist queries (accounts, orders): 3 rows {small}, 15 rows {large}")
    assert small == large
    # Each page reads the session's second-factor device once (django-otp, issue 10).
    with django_assert_max_num_queries(8):
        admin_client.get(accounts)
    with django_assert_max_num_queries(9):
        admin_client.get(orders)


def test_fulfil_and_cancel_have_their_own_permissions(client, world):
    """Item 8: the admin's fulfil and cancel pages and actions declare the
    dedicated permissions the services check (not change_order)."""
    from django.contrib.auth.models import Permission

    clerk = get_user_model().objects.create_user(username="clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="billing",
            codename__in=["view_order", "fulfil_order", "change_order"],
        )
    )
    staff_login(client, clerk)
    before = _counts()
    # change_order alone no longer cancels; fulfil_order fulfils.
    assert client.post(_url("order_cancel", world["draft"]), {"reason": "x"}).status_code == 403
    page = client.get(_url("order_change", world["custom_paid"])).content.decode()
    assert "Fulfil" in page
    changelist = client.get(reverse("admin:billing_order_changelist")).content.decode()
    assert "fulfil_action" in changelist and "cancel_action" not in changelist
    assert _counts() == before
    response = money_post(client, _url("order_fulfil", world["custom_paid"]), {"note": "5 seats"})
    assert response.status_code == 302
    assert Order.objects.get(pk=world["custom_paid"].pk).status == "fulfilled"
