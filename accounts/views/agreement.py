"""The agreement (P0): the version in force, readable, and its acceptance by
click (issue 11). Every acceptance goes through
``billing.services.agreement_accept`` with the IP address and user agent."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.models import Acceptance
from billing.selectors import account_acceptances, agreement_in_force

from ..access import account_page, client_of, needs_acceptance


@account_page(acting_to_post=True)
def agreement(request: HttpRequest) -> HttpResponse:
    account = request.account
    now = timezone.now()
    if request.method == "POST":
        version = needs_acceptance(account, now)
        if version is None:
            messages.info(request, _("Your account has already accepted the agreement in force."))
        else:
            client = client_of(request)
            try:
                billing_services.agreement_accept(
                    account=account,
                    user=request.user,
                    method=Acceptance.Method.CLICK,
                    ip_address=client.ip_address,
                    user_agent=client.user_agent,
                    version=version,
                    now=now,
                )
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
                return redirect("accounts:agreement")
            messages.success(
                request,
                _("Thank you: you accepted the Refund Agreement, version %(version)s.")
                % {"version": version.version},
            )
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return HttpResponseRedirect(target)  # a path, never a view name
        return redirect("accounts:agreement")
    version = agreement_in_force(at=now)
    return render(
        request,
        "accounts/agreement.html",
        {
            "agreement": version,
            "to_accept": needs_acceptance(account, now),
            "acceptances": account_acceptances(account=account),
            "next": request.GET.get("next", ""),
        },
    )


urlpatterns = [
    path("account/agreement/", agreement, name="agreement"),
]
