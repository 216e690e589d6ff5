"""Staff forms behind the admin's money actions.

They only parse input (yuan as typed -> integer fen through the one parser,
``amounts.parse_yuan``); every rule is checked by the service the admin view
calls, and a service's ``ValidationError`` is shown on the form by
``add_service_error``.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.forms import SafeTextForm

from .amounts import AmountError, parse_yuan
from .models import CANCEL_REASON_MAX_LENGTH, Order

# What staff record: money received offline or another way. Online money is
# recorded only from the payment provider's verified confirmation (item 8).
TOP_UP_CHANNELS = [
    (Order.Channel.OFFLINE.value, Order.Channel.OFFLINE.label),
    (Order.Channel.OTHER.value, Order.Channel.OTHER.label),
]


class YuanField(forms.CharField):
    """An amount in yuan as a person types it; ``clean`` returns integer fen.

    Item 9: parsed by ``amounts.parse_yuan`` only (ASCII digits, at most two
    decimals, optional thousands commas), never by ``Decimal`` or ``float``,
    which accept "１００", "1e3" and "1_000"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault(
            "help_text", _("In yuan (CNY), for example 100.00 or 50,000; at most 2 decimals.")
        )
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return None
        try:
            return parse_yuan(value)
        except AmountError as exc:
            raise ValidationError(str(exc), code="invalid_amount") from exc


def add_service_error(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ``ValidationError`` on the form: on the field it names
    when the form has that field, otherwise at the top of the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            if field in ("amount_fen", "agreed_amount_fen") and "amount" in form.fields:
                target = "amount"
            if field == "reference" and "bank_reference" in form.fields:
                target = "bank_reference"
            for error in errors:
                form.add_error(target, error)
    else:
        form.add_error(None, exc)


class TopUpForm(SafeTextForm):
    amount = YuanField(label=_("Amount (yuan)"))
    channel = forms.ChoiceField(label=_("Received through"), choices=TOP_UP_CHANNELS)
    reference = forms.CharField(
        label=_("Reference"),
        max_length=100,
        required=False,
        help_text=_("Bank or payment-provider reference; required for an offline transfer."),
    )
    memo = forms.CharField(label=_("Memo"), max_length=255, required=False)
    # Item 9: set by the second confirmation page of a large top-up to the amount
    # (fen) the person confirmed; the top-up is confirmed only for that amount.
    confirmed_amount_fen = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        data["confirmed_large"] = (
            data.get("amount") is not None and data.get("confirmed_amount_fen") == data["amount"]
        )
        return data


class OfflinePaymentForm(SafeTextForm):
    bank_reference = forms.CharField(
        label=_("Bank reference"),
        max_length=100,
        error_messages={"required": _("Enter the bank reference of the transfer.")},
        help_text=_("As it appears on the bank statement."),
    )


class PriceChangeForm(forms.Form):
    amount = YuanField(label=_("New price per seat and period (yuan)"))
    effective_from = forms.DateTimeField(
        label=_("Effective from (Asia/Shanghai)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={
            "required": _("Enter when the new price takes effect."),
            "invalid": _("Enter a date and time, for example 2027-01-01 00:00."),
        },
        help_text=_("Must be in the future. Periods already paid keep their price (P4)."),
    )
    # P4: set by the preview step; a change is published only once its impact
    # on auto-renewing subscriptions was shown.
    previewed = forms.BooleanField(required=False, widget=forms.HiddenInput)


class FulfilForm(SafeTextForm):
    note = forms.CharField(
        label=_("What was provided"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=_("Required for a custom service (P3)."),
    )


class CancelForm(SafeTextForm):
    reason = forms.CharField(
        label=_("Reason"), max_length=CANCEL_REASON_MAX_LENGTH, required=False, strip=True
    )


class AgreementVersionForm(SafeTextForm):
    version = forms.CharField(
        label=_("Version"), max_length=20, help_text=_("For example 2026-01-01.")
    )
    title = forms.CharField(label=_("Title"), max_length=200, initial="Refund Agreement")
    effective_from = forms.DateTimeField(
        label=_("In force from (Asia/Shanghai)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={
            "required": _("Enter when the new version takes effect."),
            "invalid": _("Enter a date and time, for example 2027-01-01 00:00."),
        },
        help_text=_("Now or later, never in the past (P0). It cannot be changed once in force."),
    )
    text = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 20, "cols": 80}))
