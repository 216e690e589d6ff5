"""Who is looking at an account page, and for which account (issue 11).

Every customer view is scoped to the signed-in user's account: the account
comes from the user's membership (never from the URL), and every object a view
shows is looked up *within* that account, so another account's ids give 404,
never the data. Acting (paying, giving notice, managing members) needs an
owner or admin membership that is not suspended (P3); the services check that
again themselves (``billing.authz``), whoever calls them.

The acting account (issue 20) of a user in several accounts is the one they
chose last: in this session (``POST /account/switch/``), else the choice
remembered across logins (``accounts.AccountChoice``), else the account they
own, else their earliest membership. Never the role across accounts: being
made an admin somewhere else never moves a user's pages there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from axes.helpers import get_client_ip_address
from django.contrib.auth.views import redirect_to_login
from django.db.models import Case, Exists, IntegerField, OuterRef, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing.authz import ACTING_ROLES
from billing.models import Acceptance, Account, AccountMember, AgreementVersion
from core.audit import resolve_now

from .models import AccountChoice
from .services import Client

SESSION_ACCOUNT = "account_id"
# Every view ``account_page`` decorates says who may post to it, in this
# attribute: "always" (acting), "post" (acting to post) or None (reading only).
# The security sweeps read it from the resolver (tests/security).
ACTING_ATTR = "account_acting"


def client_of(request: HttpRequest) -> Client:
    """The IP address (as django-axes resolves it) and user agent P0 records."""
    return Client(
        ip_address=get_client_ip_address(request) or None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
    )


def memberships(user: Any) -> QuerySet[AccountMember]:
    """The user's memberships: the ones they own first, then oldest first
    (never by role otherwise). Each carries ``_chosen``: the account the user
    last chose (``AccountChoice``), counted only while they still belong."""
    return (
        AccountMember.objects.filter(user=user)
        .select_related("account")
        .annotate(
            _owned=Case(
                When(role=AccountMember.Role.OWNER, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            _chosen=Exists(
                AccountChoice.objects.filter(
                    user_id=OuterRef("user_id"), account_id=OuterRef("account_id")
                )
            ),
        )
        .order_by("_owned", "added_at", "pk")
    )


def acting_membership(
    mine: list[AccountMember], chosen_in_session: int | None
) -> AccountMember | None:
    """Issue 20: the membership a user acts under, from their memberships as
    ``memberships`` orders them: the account chosen in this session, else
    the one chosen last (remembered), else the one they own, else the
    earliest."""
    if chosen_in_session:
        member = next((m for m in mine if m.account_id == chosen_in_session), None)
        if member is not None:
            return member
    remembered = next((m for m in mine if getattr(m, "_chosen", False)), None)
    return remembered or (mine[0] if mine else None)


def current_membership(request: HttpRequest) -> AccountMember | None:
    """The membership the request acts under (``acting_membership``). One
    query per request: the memberships are kept on the request for the
    account switcher (``user_memberships``)."""
    user = request.user
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    chosen = request.session.get(SESSION_ACCOUNT)
    return acting_membership(user_memberships(request), chosen if isinstance(chosen, int) else None)


def remember_choice(*, user: Any, account: Account, now: dt.datetime | None = None) -> None:
    """Remember across logins that ``user`` chose to act for ``account``
    (the switch view; the caller checked the membership). A preference, not
    a right: no history."""
    AccountChoice.objects.update_or_create(
        user=user, defaults={"account": account, "chosen_at": resolve_now(now)}
    )


def user_memberships(request: HttpRequest) -> list[AccountMember]:
    """All of the signed-in user's memberships (with their accounts), read once
    per request."""
    cached = getattr(request, "_customer_memberships", None)
    if cached is None:
        cached = list(memberships(request.user))
        request._customer_memberships = cached  # type: ignore[attr-defined]
    return cached


def may_act(member: AccountMember | None) -> bool:
    """Owner or admin, not suspended (P3): pays, gives notice, invites."""
    return bool(member and member.role in ACTING_ROLES and member.suspended_at is None)


def not_allowed(request: HttpRequest, member: AccountMember) -> HttpResponse:
    """The 403 page saying why this member may not act (P3)."""
    return render(request, "accounts/not_allowed.html", {"member": member}, status=403)


def account_page(
    view: Callable[..., HttpResponse] | None = None,
    *,
    acting: bool = False,
    acting_to_post: bool = False,
) -> Any:
    """Decorate a customer view: log in first, then ``request.account`` and
    ``request.membership`` are set. With ``acting=True`` a member who may not
    act gets a 403 page saying why (the service would refuse them too); with
    ``acting_to_post=True`` every member reads the page, but only one who may
    act posts to it."""

    def decorate(fn: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(fn)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            member = current_membership(request)
            if member is None:
                return render(request, "accounts/no_account.html", status=403)
            request.membership = member
            request.account = member.account
            posting = request.method == "POST"
            if (acting or (acting_to_post and posting)) and not may_act(member):
                return not_allowed(request, member)
            return fn(request, *args, **kwargs)

        setattr(wrapper, ACTING_ATTR, "always" if acting else "post" if acting_to_post else None)
        return wrapper

    return decorate(view) if view is not None else decorate


def account_of(request: HttpRequest) -> Account:
    return request.account  # type: ignore[attr-defined]


def needs_acceptance(account: Account, now: dt.datetime | None = None) -> AgreementVersion | None:
    """P0: the agreement version in force at ``now`` if ``account`` has not
    accepted it yet, else ``None``. The purchase pages call this before a
    purchase and send the customer to ``accounts:agreement`` (with
    ``?next=``) when it returns a version. One query."""
    version = (
        AgreementVersion.objects.filter(effective_from__lte=resolve_now(now))
        .annotate(
            accepted=Exists(
                Acceptance.objects.filter(account=account, agreement_version=OuterRef("pk"))
            )
        )
        .order_by("-effective_from")
        .first()
    )
    if version is None or version.accepted:
        return None
    return version
