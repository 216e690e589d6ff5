"""The books finance closes each month (issue 19). Nothing is stored: the
month close is computed from the ledger, the orders and the fapiao
(``books.services.month_close``). ``MonthClose`` is a proxy of the ledger
that gives the admin its page and finance its permission
(``books.view_monthclose``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from billing.models import LedgerEntry


class MonthClose(LedgerEntry):
    class Meta:
        proxy = True
        verbose_name = _("month close")
        verbose_name_plural = _("month close")
        default_permissions = ("view",)
