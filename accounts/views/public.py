"""Pages anyone may read: what MTlogin sells (issue 11)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from billing.models import Package
from billing.selectors import price_in_effect


def home(request: HttpRequest) -> HttpResponse:
    """The packages on sale and their prices in effect now (P4)."""
    now = timezone.now()
    offers = [
        {"package": package, "price": price_in_effect(package=package, at=now)}
        for package in Package.objects.filter(is_active=True).order_by("max_seats", "code")
    ]
    return render(request, "accounts/home.html", {"offers": offers})


urlpatterns = [
    path("", home, name="home"),
]
