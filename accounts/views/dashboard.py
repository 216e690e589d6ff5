"""The account overview (issue 11) and the account switcher."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ..access import SESSION_ACCOUNT, account_page, memberships, remember_choice
from ..overview import overview


@account_page
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/dashboard.html",
        {
            "account": request.account,
            "o": overview(account=request.account, now=timezone.now()),
        },
    )


@login_required
@require_POST
def switch_account(request: HttpRequest) -> HttpResponse:
    """Act under another account the user is a member of: for this session
    (``account_id``) and, remembered, at the next login (issue 20). An
    account the user does not belong to is a 404 and changes nothing."""
    try:
        account_id = int(request.POST.get("account_id", ""))
    except ValueError:
        raise Http404 from None
    if not 0 < account_id < 2**63:  # beyond a bigint: no such account (never a 500)
        raise Http404
    member = memberships(request.user).filter(account_id=account_id).first()
    if member is None:
        raise Http404
    remember_choice(user=request.user, account=member.account)
    request.session[SESSION_ACCOUNT] = account_id
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = ""
    # A path, never a view name: redirect("abc") would try to reverse it.
    return HttpResponseRedirect(target) if target else redirect("accounts:dashboard")


urlpatterns = [
    path("account/", dashboard, name="dashboard"),
    path("account/switch/", switch_account, name="switch_account"),
]
