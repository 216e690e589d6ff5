"""Forms of the money pages (issue 11). They parse input only; the services
decide (a service's ``ValidationError`` is shown with
``billing.forms.add_service_error``)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from billing.forms import YuanField
from billing.models import Package

from . import payments

BALANCE = "balance"


class TopUpForm(forms.Form):
    amount = YuanField(label=_("Amount (yuan)"))
    # Set by the second step of a large top-up (item 9): the amount confirmed.
    confirmed_amount_fen = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(p.code, p.name) for p in payments.available()]
        self.fields["provider"] = forms.ChoiceField(
            label=_("Pay with"), choices=choices, initial=choices[0][0] if choices else None
        )


class PackageSeatsMixin:
    """Package by code among those on sale, seats within its maximum (P3)."""

    packages: dict[str, Package]

    def clean_package(self) -> Package:
        code = self.cleaned_data["package"]
        return self.packages[code]

    def clean(self):
        data = forms.Form.clean(self)
        package, seats = data.get("package"), data.get("seats")
        if package is not None and seats is not None and seats > package.max_seats:
            self.add_error(
                "seats",
                ValidationError(
                    _("%(package)s allows at most %(max)s seats.")
                    % {"package": package.localized_name, "max": package.max_seats},
                    code="too_many_seats",
                ),
            )
        return data


class BuyForm(PackageSeatsMixin, forms.Form):
    """Buy or upgrade: package and seats, the separate consent box, and how to pay."""

    package = forms.ChoiceField(label=_("Package"))
    seats = forms.IntegerField(
        label=_("Seats"),
        min_value=1,
        error_messages={
            "invalid": _("Enter the number of seats as a whole number, for example 3."),
            "min_value": _("Buy at least 1 seat."),
        },
    )
    consent = forms.BooleanField(
        label=_(
            "I consent to later cycles being deducted from my balance automatically, without "
            "a password or SMS code, unless I give notice by the deadline."
        ),
        error_messages={
            "required": _(
                "Tick the consent box: the package renews from your balance, and it is bought "
                "only with your consent to that."
            )
        },
    )
    pay_with = forms.ChoiceField(label=_("Pay"), widget=forms.RadioSelect)

    def __init__(self, *args, packages: list[Package], balance_fen: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.packages = {p.code: p for p in packages}
        self.fields["package"].choices = [(p.code, p.localized_name) for p in packages]
        self.fields["pay_with"].choices = [(BALANCE, _("From my balance"))] + [
            (p.code, p.name) for p in payments.available()
        ]
        self.fields["pay_with"].initial = BALANCE
        self.balance_fen = balance_fen


class ChooseForm(PackageSeatsMixin, forms.Form):
    """The compare page's choice (GET): package and seats, checked like ``BuyForm``."""

    package = forms.ChoiceField(label=_("Package"))
    seats = forms.IntegerField(
        label=_("Seats"),
        min_value=1,
        initial=1,
        error_messages=BuyForm.base_fields["seats"].error_messages,
    )

    def __init__(self, *args, packages: list[Package], **kwargs):
        super().__init__(*args, **kwargs)
        self.packages = {p.code: p for p in packages}
        self.fields["package"].choices = [(p.code, p.localized_name) for p in packages]
