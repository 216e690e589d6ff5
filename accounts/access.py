"""Who is looking at an account page, and for which account (issue 11).

Every customer view is scoped to the signed-in user's account: the account
comes from the user's membership (never from the URL), and every object a view
shows is looked up *within* that account, so another account's ids give 404,
never the data. Acting (paying, giving notice, managing members) needs an
owner or admin membership that is not suspended (P3); the services check that
again themselves (``billing.authz``), whoever calls them.
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
    """The user's memberships, owner first, then oldest first."""
    return (
        AccountMember.objects.filter(user=user)
        .select_related("account")
        .annotate(
            _rank=Case(
                When(role=AccountMember.Role.OWNER, then=Value(0)),
                When(role=AccountMember.Role.ADMIN, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("_rank", "added_at", "pk")
    )


def current_membership(request: HttpRequest) -> AccountMember | None:
    """The membership the request acts under: the account chosen in this
    session if the user still belongs to it, else the user's first. One
    query per request: the memberships are kept on the request for the
    account switcher (``user_memberships``)."""
    user = request.user
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    mine = user_memberships(request)
    chosen = request.session.get(SESSION_ACCOUNT)
    member = next((m for m in mine if m.account_id == chosen), None) if chosen else None
    return member or (mine[0] if mine else None)


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
