"""The account overview (issue 11)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from billing.selectors import live_subscription

from ..access import account_page


@account_page
def dashboard(request: HttpRequest) -> HttpResponse:
    account = request.account
    return render(
        request,
        "accounts/dashboard.html",
        {"account": account, "subscription": live_subscription(account=account)},
    )


urlpatterns = [
    path("account/", dashboard, name="dashboard"),
]
