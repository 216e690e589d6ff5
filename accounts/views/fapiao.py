"""Fapiao on the account pages (issue 19; P3): ask for one for paid orders,
follow each request, download an issued fapiao.

Thin views: the form is parsed here, the rules are in
``invoicing.services.fapiao_request_create`` (which checks the actor itself);
reads go through ``invoicing.selectors``, always within ``request.account``.
Every member reads; the owner and admins ask.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from invoicing import selectors, services
from invoicing.models import FapiaoRequest

from ..access import account_page, may_act
from ..formatting import money
from .service import TokenForm, _Already, _submit, _with_token

CONTENT_TYPES = {"pdf": "application/pdf", "ofd": "application/ofd"}


class FapiaoForm(TokenForm):
    orders = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Orders on this fapiao"),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("Choose at least one paid order.")},
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Type"),
        choices=FapiaoRequest.Kind.choices,
        initial=FapiaoRequest.Kind.GENERAL,
        widget=forms.RadioSelect,
    )
    medium = forms.ChoiceField(
        label=gettext_lazy("Form"),
        choices=FapiaoRequest.Medium.choices,
        initial=FapiaoRequest.Medium.ELECTRONIC,
        widget=forms.RadioSelect,
    )
    buyer_name = forms.CharField(
        label=gettext_lazy("Buyer's name (名称)"),
        max_length=100,
        help_text=gettext_lazy("As on the buyer's business licence."),
    )
    credit_code = forms.CharField(
        label=gettext_lazy("Unified social credit code (统一社会信用代码)"),
        max_length=30,
        help_text=gettext_lazy("18 characters, on the business licence."),
    )
    buyer_address = forms.CharField(
        label=gettext_lazy("Registered address"), max_length=200, required=False
    )
    buyer_phone = forms.CharField(label=gettext_lazy("Telephone"), max_length=30, required=False)
    buyer_bank = forms.CharField(label=gettext_lazy("Bank"), max_length=100, required=False)
    buyer_bank_account = forms.CharField(
        label=gettext_lazy("Bank account number"),
        max_length=40,
        required=False,
        help_text=gettext_lazy(
            "Address, telephone, bank and account number: needed for a special fapiao."
        ),
    )
    email = forms.EmailField(
        label=gettext_lazy("Email for the fapiao"),
        max_length=254,
        help_text=gettext_lazy("We tell you here when the fapiao is issued."),
    )
    mailing_address = forms.CharField(
        label=gettext_lazy("Mailing address (paper fapiao only)"), max_length=300, required=False
    )

    def __init__(self, *args: Any, orders: list, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["orders"].choices = [
            (
                order.pk,
                _("Order #%(pk)s: %(package)s, paid %(amount)s")
                % {
                    "pk": order.pk,
                    "package": order.package.localized_name,
                    "amount": money(order.invoiceable_fen),
                },
            )
            for order in orders
        ]


TITLE_FIELDS = (
    "buyer_name",
    "credit_code",
    "buyer_address",
    "buyer_phone",
    "buyer_bank",
    "buyer_bank_account",
    "email",
)


def _initial(request: HttpRequest, orders: list) -> dict[str, Any]:
    """Prefill: the order the customer came from, the saved title chosen (or
    the latest one), the account's email."""
    initial: dict[str, Any] = {"email": request.account.email or request.user.email}
    wanted = request.GET.get("order", "")
    if wanted.isdigit() and any(o.pk == int(wanted) for o in orders):
        initial["orders"] = [int(wanted)]
    titles = selectors.account_invoice_titles(account=request.account)
    chosen = request.GET.get("title", "")
    title = titles.filter(pk=int(chosen)).first() if chosen.isdigit() else titles.first()
    if title is not None:
        for name in TITLE_FIELDS:
            value = getattr(title, name)
            if value:
                initial[name] = value
        if title.buyer_bank_account:
            initial["kind"] = FapiaoRequest.Kind.SPECIAL
    return initial


@account_page
def fapiao_list(request: HttpRequest) -> HttpResponse:
    account = request.account
    return render(
        request,
        "accounts/fapiao.html",
        {
            "requests": selectors.account_fapiao_requests(account=account),
            "waiting": selectors.invoiceable_orders(account=account),
            "may_act": may_act(request.membership),
        },
    )


@account_page(acting=True)
def fapiao_new(request: HttpRequest) -> HttpResponse:
    """Ask for a fapiao (P3): the orders, the type, the buyer's title."""
    account = request.account
    orders = selectors.invoiceable_orders(account=account)
    if request.method == "POST":
        form = FapiaoForm(request.POST, orders=orders)
        if form.is_valid():

            def ask(data: dict) -> FapiaoRequest:
                return services.fapiao_request_create(
                    account=account,
                    actor=request.user,
                    order_ids=data["orders"],
                    kind=data["kind"],
                    medium=data["medium"],
                    buyer_name=data["buyer_name"],
                    credit_code=data["credit_code"],
                    buyer_address=data["buyer_address"],
                    buyer_phone=data["buyer_phone"],
                    buyer_bank=data["buyer_bank"],
                    buyer_bank_account=data["buyer_bank_account"],
                    email=data["email"],
                    mailing_address=data["mailing_address"],
                )

            try:
                asked = _submit(request, form, ask)
            except _Already:
                return redirect("accounts:fapiao")
            if asked is not None:
                return redirect("accounts:fapiao_detail", pk=asked.pk)
    else:
        form = FapiaoForm(orders=orders, initial=_initial(request, orders))
    form = _with_token(request, form)
    return render(
        request,
        "accounts/fapiao_new.html",
        {
            "form": form,
            "orders": orders,
            "titles": selectors.account_invoice_titles(account=account)[:10],
        },
    )


@account_page
def fapiao_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = selectors.account_fapiao_request_or_404(account=request.account, pk=pk)
    return render(request, "accounts/fapiao_detail.html", {"item": item})


@account_page
def fapiao_file(request: HttpRequest, pk: int) -> HttpResponse:
    """The issued fapiao's file, for the account's members only."""
    item = selectors.account_fapiao_file_or_404(account=request.account, pk=pk)
    if not item.file_data:
        raise Http404
    extension = item.file_type or "pdf"
    response = HttpResponse(
        bytes(item.file_data), content_type=CONTENT_TYPES.get(extension, "application/pdf")
    )
    response["Content-Disposition"] = f'attachment; filename="fapiao-{item.number}.{extension}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns = [
    path("account/fapiao/", fapiao_list, name="fapiao"),
    path("account/fapiao/new/", fapiao_new, name="fapiao_new"),
    path("account/fapiao/<int:pk>/", fapiao_detail, name="fapiao_detail"),
    path("account/fapiao/<int:pk>/file/", fapiao_file, name="fapiao_file"),
]
