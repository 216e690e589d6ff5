"""Corporate bank transfers on the account pages (issue 19): the vendor's
receiving account with the account's transfer reference, the report form
(amount, date, remitting company and account, the bank slip), and each
reported transfer's state. Thin: ``transfers.services.transfer_report``
checks the actor and the input; reads go through ``transfers.selectors``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.forms import YuanField
from transfers import policy, selectors, services
from transfers.models import BankTransfer

from ..access import account_page, may_act
from .service import TokenForm, _Already, _submit, _with_token


class TransferForm(TokenForm):
    amount = YuanField(label=gettext_lazy("Amount transferred (yuan)"))
    transferred_on = forms.DateField(
        label=gettext_lazy("Date of the transfer"),
        help_text=gettext_lazy("As on the bank slip (YYYY-MM-DD)."),
    )
    remitter_name = forms.CharField(label=gettext_lazy("Remitting company"), max_length=100)
    remitter_account = forms.CharField(
        label=gettext_lazy("Remitting account number"), max_length=40
    )
    slip = forms.FileField(
        label=gettext_lazy("Bank slip (PNG, JPEG or PDF, optional)"), required=False
    )

    def clean_slip(self):
        upload = self.cleaned_data.get("slip")
        if upload and upload.size > policy.MAX_SLIP_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)s MB.")
                % {"mb": policy.MAX_SLIP_BYTES // (1024 * 1024)}
            )
        return upload


@account_page(acting_to_post=True)
def transfers(request: HttpRequest) -> HttpResponse:
    account = request.account
    acting = may_act(request.membership)
    form = TransferForm()
    if request.method == "POST":
        form = TransferForm(request.POST, request.FILES)
        if form.is_valid():

            def report(data: dict[str, Any]) -> BankTransfer:
                upload = data.get("slip")
                return services.transfer_report(
                    account=account,
                    actor=request.user,
                    amount_fen=data["amount"],
                    transferred_on=data["transferred_on"],
                    remitter_name=data["remitter_name"],
                    remitter_account=data["remitter_account"],
                    slip_name=upload.name if upload else "",
                    slip_data=upload.read() if upload else b"",
                )

            try:
                done = _submit(request, form, report)
            except _Already:
                return redirect("accounts:transfers")
            if done is not None:
                messages.success(
                    request,
                    _("Transfer #%(pk)s reported. Our finance team credits it once it is found.")
                    % {"pk": done.pk},
                )
                return redirect("accounts:transfers")
    if acting:
        form = _with_token(request, form)
    return render(
        request,
        "accounts/transfers.html",
        {
            "form": form,
            "may_act": acting,
            "reference": services.reference_of(account),
            "bank": {
                "name": settings.BANK_ACCOUNT_NAME,
                "bank": settings.BANK_ACCOUNT_BANK,
                "number": settings.BANK_ACCOUNT_NUMBER,
            },
            "rows": selectors.account_transfers(account=account),
        },
    )


urlpatterns = [path("account/transfers/", transfers, name="transfers")]
