"""Staff forms behind the admin's money actions.

They only parse input (yuan as ``Decimal`` -> integer fen through
``policy.to_fen``); every rule is checked by the service the admin view calls,
and a service's ``ValidationError`` is shown on the form by ``add_service_error``.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from . import policy
from .models import Order

# What staff record: money received offline or another way. Online money is
# recorded only from the payment provider's verified confirmation (item 8).
TOP_UP_CHANNELS = [
    (Order.Channel.OFFLINE.value, Order.Channel.OFFLINE.label),
    (Order.Channel.OTHER.value, Order.Channel.OTHER.label),
]


class YuanField(forms.DecimalField):
    """An amount in yuan with at most two decimals; ``clean`` returns integer fen."""

    default_error_messages = {
        "invalid": "Enter the amount in yuan as a number, for example 100 or 99.50.",
        "max_decimal_places": "Give the amount in yuan with at most 2 decimals (fen).",
        "max_digits": "That amount is too large.",
        "max_whole_digits": "That amount is too large.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("help_text", "In yuan (CNY), for example 100.00.")
        super().__init__(**kwargs)

    def clean(self, value):
        amount: Decimal | None = super().clean(value)
        if amount is None:
            return None
        if amount <= 0:
            raise ValidationError("The amount must be greater than zero.", code="not_positive")
        return policy.to_fen(amount)


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


class TopUpForm(forms.Form):
    amount = YuanField(label="Amount (yuan)")
    channel = forms.ChoiceField(label="Received through", choices=TOP_UP_CHANNELS)
    reference = forms.CharField(
        label="Reference",
        max_length=100,
        required=False,
        help_text="Bank or payment-provider reference; required for an offline transfer.",
    )
    memo = forms.CharField(label="Memo", max_length=255, required=False)


class OfflinePaymentForm(forms.Form):
    bank_reference = forms.CharField(
        label="Bank reference",
        max_length=100,
        error_messages={"required": "Enter the bank reference of the transfer."},
        help_text="As it appears on the bank statement.",
    )


class PriceChangeForm(forms.Form):
    amount = YuanField(label="New price per seat and period (yuan)")
    effective_from = forms.DateTimeField(
        label="Effective from (Asia/Shanghai)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={
            "required": "Enter when the new price takes effect.",
            "invalid": "Enter a date and time, for example 2027-01-01 00:00.",
        },
        help_text="Must be in the future. Periods already paid keep their price (P4).",
    )


class FulfilForm(forms.Form):
    note = forms.CharField(
        label="What was provided",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Required for a custom service (P3).",
    )


class CancelForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=200, required=False)
