"""Issue 20 sweeps, from the URL resolver: a URL added later is swept too.

- Bad input never gives a 5xx: every customer and admin URL, with NUL, CR/LF,
  over-long and non-numeric values in its path, its query string and every
  field of its form. A NUL anywhere is a 400 with the product's message.
- Every state-changing endpoint refuses a POST without a CSRF token; the
  payment provider callbacks (signed) are the exceptions, by name.
- Every customer POST that needs an owner or admin refuses a plain member and
  a suspended one, and changes nothing.
- The customer pages escape a stored ``<script>`` in every free-text field.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.test import Client
from django.utils import timezone

from accounts import access
from billing.models import AccountMember
from tests import factories
from tests.accounts.test_every_url import _customer_with_everything, _snapshot
from tests.adminforms import staff_login

from .resolver import Route, routes

pytestmark = pytest.mark.django_db

# Bad values, as they travel in a URL (path and query) and in a form.
NUL_URL, CRLF_URL = "%00", "%0D%0A"
LONG = "9" * 4000
BAD_FORM = {
    "crlf": "Hi\r\nBcc: evil@example.com",
    "long": "x" * 20_000,
    "nonnumeric": "abc",
}
QUERY_KEYS = (
    "q",
    "p",
    "o",
    "e",
    "next",
    "status__exact",
    "id__exact",
    "account__id__exact",
    "year",
    "_changelist_filters",
)
# POSTs the sweep does not make: they end the session the sweep runs in.
ENDS_SESSION = {"accounts:logout", "admin:logout"}
# Signed by the payment provider, which cannot carry our CSRF token.
CSRF_EXEMPT = {"accounts:payment_callback"}
# Endpoints that change nothing and are answered before the CSRF check.
NOT_STATE_CHANGING: set[str] = set()


# --- the world the sweeps run in -----------------------------------------------------


@pytest.fixture
def world(catalog, agreement):
    now = timezone.now()
    objects = _customer_with_everything("Sweep Co", catalog, now)
    account = objects["account"]
    factories.confirm_email(account.owner)
    plain = AccountMember.objects.create(
        account=account, user=factories.make_user(), role="member", added_at=now
    )
    suspended_admin = AccountMember.objects.create(
        account=account,
        user=factories.make_user(),
        role="admin",
        added_at=now,
        suspended_at=now,
        suspended_reason="more members than seats",
    )
    objects["plain"] = plain.user
    objects["suspended"] = suspended_admin.user
    objects["superuser"] = get_user_model().objects.create_superuser(
        "sweep-admin", "sweep-admin@example.com", "pw"
    )
    return objects


def _ids(world) -> dict[str, str]:
    """A real id for each converter name the customer pages use."""
    return {
        "order_id": str(world["order"].pk),
        "reference": "NOSUCHREF",
        "provider": "sandbox",
        "token": "not-a-token",
        "uidb64": "MQ",
    }


_OBJECT_OF = {
    "accounts:notice_detail": "notice",
    "accounts:notice_withdraw": "notice",
    "accounts:member_remove": "member",
    "accounts:complaint_detail": "complaint",
    "accounts:refund_detail": "refund",
}


def good_values(route: Route, world) -> dict[str, str]:
    """A value for each converter that reaches the page: a real object's id."""
    values = {}
    ids = _ids(world)
    for name, _conv in route.params:
        if route.is_admin and name in ("object_id", "pk", "id"):
            model = route.model()
            first = model.objects.order_by("pk").first() if model is not None else None
            values[name] = str(first.pk) if first is not None else "1"
        elif name == "pk" and route.name in _OBJECT_OF:
            values[name] = str(world[_OBJECT_OF[route.name]].pk)
        else:
            values[name] = ids.get(name, "1")
    return values


def good_url(route: Route, world) -> str:
    return route.fill(good_values(route, world))


def bad_paths(route: Route, world) -> list[tuple[str, str]]:
    """(kind, url) with each non-integer converter replaced by a bad value."""
    out = []
    for name, conv in route.params:
        if conv == "int":
            continue  # the resolver itself refuses anything but digits (404)
        for kind, value in (("nul", NUL_URL), ("crlf", CRLF_URL), ("long", LONG), ("text", "abc")):
            out.append((kind, route.fill(good_values(route, world) | {name: value})))
    return out


_FIELD = re.compile(r"<(?:input|select|textarea)\b[^>]*\bname=\"([^\"]+)\"", re.IGNORECASE)
_TOKEN = re.compile(
    r"name=\"form_token\"[^>]*value=\"([^\"]*)\"|value=\"([^\"]*)\"[^>]*name=\"form_token\""
)


def form_fields(html: str) -> list[str]:
    names = []
    for name in _FIELD.findall(html):
        if name not in names and name != "csrfmiddlewaretoken":
            names.append(name)
    return names


def client_for(route: Route, world, **kwargs) -> Client:
    client = Client(raise_request_exception=False, **kwargs)
    if route.is_admin:
        staff_login(client, world["superuser"])
    else:
        client.force_login(world["account"].owner)
    return client


# --- 1. bad input never gives a 5xx --------------------------------------------------


def _sweep(route: Route, world, failures: list[str], counted: list[int]) -> None:
    client = client_for(route, world)
    url = good_url(route, world)

    def check(kind: str, method: str, target: str, response) -> None:
        counted[0] += 1
        status = response.status_code
        if status >= 500:
            failures.append(f"{status} {method} {target[:120]!r} ({route.name}, {kind})")
        elif kind == "nul" and status != 400:
            failures.append(f"{status} (not 400) {method} {target[:120]!r} ({route.name}, nul)")

    for kind, target in bad_paths(route, world):
        check(kind, "GET", target, client.get(target))
    for kind, value in (("nul", NUL_URL), ("crlf", CRLF_URL), ("long", LONG), ("text", "abc")):
        query = "&".join(f"{key}={value}" for key in QUERY_KEYS)
        check(kind, "GET", f"{url}?{query}", client.get(f"{url}?{query}"))
    if route.name in ENDS_SESSION:
        return
    page = client.get(url)
    fields = form_fields(page.content.decode("utf-8", "replace")) if page.status_code == 200 else []
    fields = fields or ["q", "email", "amount", "reason"]
    token = (
        _TOKEN.search(page.content.decode("utf-8", "replace")) if page.status_code == 200 else None
    )
    token_value = (token.group(1) or token.group(2)) if token else ""
    check("nul", "POST", url, client.post(url, {name: "a\x00b" for name in fields}))
    for kind, value in BAD_FORM.items():
        data = {name: value for name in fields}
        if token_value:
            data["form_token"] = token_value  # reach the service behind the token
        check(kind, "POST", url, client.post(url, data))


def test_bad_input_never_gives_a_server_error(world):
    failures: list[str] = []
    counted = [0]
    swept = routes()
    for route in swept:
        sid = transaction.savepoint()
        try:
            _sweep(route, world, failures, counted)
        finally:
            transaction.savepoint_rollback(sid)
    assert not failures, "\n".join(failures)
    assert len(swept) > 150  # the admin and the customer pages were all found
    assert counted[0] > 10 * len(swept)


def test_a_nul_byte_is_answered_with_the_products_message(world, client):
    response = client.get("/admin/billing/order/?status__exact=%00")
    assert response.status_code == 400
    assert b"control character" in response.content.lower() or b"NUL" in response.content


# --- 2. no POST without a CSRF token --------------------------------------------------


def test_every_post_needs_a_csrf_token(world):
    refused = 0
    problems = []
    for route in routes():
        if route.name in CSRF_EXEMPT | NOT_STATE_CHANGING:
            continue
        client = client_for(route, world, enforce_csrf_checks=True)
        url = good_url(route, world)
        response = client.post(url, {"form_token": "x", "email": "a@example.com"})
        if response.status_code != 403:
            problems.append(f"{response.status_code} POST {url} ({route.name})")
        else:
            refused += 1
    assert not problems, "\n".join(problems)
    assert refused > 150


def test_the_csrf_exemptions_are_exactly_the_signed_callbacks():
    exempt = {r.name for r in routes() if getattr(r.callback, "csrf_exempt", False)}
    # Django's own admin views are CSRF-protected inside (csrf_protect).
    assert exempt - NOT_STATE_CHANGING == CSRF_EXEMPT


# --- 3. acting needs an owner or admin ------------------------------------------------


def _customer_routes() -> list[Route]:
    return [r for r in routes() if r.name.startswith("accounts:")]


def test_every_customer_route_says_who_may_post():
    """A new customer page must be classed: an account page (acting or not),
    a public page, or one of the user's own actions."""
    public_or_self = {
        "accounts:home",
        "accounts:agreement_public",
        "accounts:signup",
        "accounts:confirm_email",
        "accounts:confirm_email_resend",
        "accounts:password_reset",
        "accounts:password_reset_done",
        "accounts:password_reset_confirm",
        "accounts:password_reset_complete",
        "accounts:login",
        "accounts:logout",
        "accounts:invitation",
        "accounts:invitation_signup",
        "accounts:sandbox_pay",
        "accounts:payment_callback",
        "accounts:switch_account",
    }
    unclassed = [
        r.name
        for r in _customer_routes()
        if r.name not in public_or_self and not hasattr(r.callback, access.ACTING_ATTR)
    ]
    assert unclassed == []


@pytest.mark.parametrize("who", ["plain", "suspended"])
def test_acting_posts_refuse_plain_and_suspended_members(world, who):
    acting = [
        r for r in _customer_routes() if getattr(r.callback, access.ACTING_ATTR, None) is not None
    ]
    assert len(acting) >= 8
    client = Client(raise_request_exception=False)
    client.force_login(world[who])
    before = _snapshot(world)
    problems = []
    for route in acting:
        url = good_url(route, world)
        page = client.get(url)
        html = page.content.decode("utf-8", "replace")
        data = {name: "1" for name in form_fields(html)} | {
            "email": "x@example.com",
            "amount": "1.00",
            "reason": "r",
            "body": "b",
            "subject": "s",
        }
        response = client.post(url, data)
        if response.status_code != 403:
            problems.append(f"{response.status_code} POST {url} as a {who} member")
    assert not problems, "\n".join(problems)
    assert _snapshot(world) == before


# --- 4. stored scripts are escaped ----------------------------------------------------

# The customer-facing models whose free text the pages show.
SHOWN = (
    "billing.Account",
    "billing.Package",
    "billing.Order",
    "notices.NonRenewalNotice",
    "complaints.Complaint",
    "complaints.ComplaintMessage",
    "refunds.RefundRequest",
)


def _plant(world) -> dict[str, str]:
    """Write ``<script>`` into every free-text field of the rows the account's
    pages show (by UPDATE, as if it had been stored before any validation);
    return tag -> field."""
    from django.apps import apps

    planted: dict[str, str] = {}
    account = world["account"]
    for label in SHOWN:
        model = apps.get_model(label)
        names = [f.name for f in model._meta.fields]
        rows = model.objects.all()
        if "account" in names:
            rows = rows.filter(account=account)
        for field in model._meta.fields:
            if not isinstance(field, models.CharField | models.TextField):
                continue
            if field.choices or field.unique or field.name in ("code", "message_id", "email_to"):
                continue
            tag = f"x{len(planted)}"
            payload = f"<script>{tag}</script>"
            if field.max_length and field.max_length < len(payload):
                continue
            if rows.update(**{field.name: payload}):
                planted[tag] = f"{label}.{field.name}"
    user = account.owner
    get_user_model().objects.filter(pk=user.pk).update(
        first_name="<script>xu1</script>", last_name="<script>xu2</script>"
    )
    planted["xu1"] = planted["xu2"] = "auth.User name"
    return planted


def test_customer_pages_escape_stored_scripts(world):
    planted = _plant(world)
    client = Client(raise_request_exception=False)
    client.force_login(world["account"].owner)
    seen: set[str] = set()
    pages = 0
    for route in _customer_routes():
        if route.name in ENDS_SESSION or route.name == "accounts:payment_callback":
            continue
        response = client.get(good_url(route, world))
        if response.status_code != 200:
            continue
        if not response["Content-Type"].startswith("text/html"):
            continue  # a PDF receipt or a fapiao file: no page a script runs in
        pages += 1
        html = response.content.decode()
        assert "<script>x" not in html, route.name
        seen |= {tag for tag in planted if f"&lt;script&gt;{tag}&lt;/script&gt;" in html}
    assert pages >= 15
    shown = {planted[tag] for tag in seen}
    # Every kind of free text a customer reads was on a page, escaped.
    for field in (
        "billing.Account.name",
        "complaints.Complaint.subject",
        "complaints.ComplaintMessage.body",
        "refunds.RefundRequest.explanation_en",
    ):
        assert field in shown, (field, sorted(shown))
