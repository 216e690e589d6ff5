"""The month close page in the admin (issue 19; finance): pick a month, read
its figures, download the exports. ``books.view_monthclose`` opens it."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.admin.base import yuan
from core.time import local_date

from . import exports, services
from .models import MonthClose

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORTS = {
    "close": exports.close_csv,
    "ledger": exports.ledger_csv,
    "orders": exports.orders_csv,
    "refunds": exports.refunds_csv,
    "fapiao": exports.fapiao_csv,
}


@admin.register(MonthClose)
class MonthCloseAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = local_date(timezone.now())
        error = ""
        try:
            month = (
                services.parse_month(request.GET.get("month", ""))
                if request.GET.get("month")
                else today.replace(day=1)
            )
        except ValueError:
            error = _("Give the month as YYYY-MM, for example 2026-11.")
            month = today.replace(day=1)
        close = services.month_close(month, now=timezone.now())
        export = request.GET.get("export", "")
        if export in EXPORTS and not error:
            name = f"{export}-{close.month:%Y-%m}"
            if request.GET.get("format") == "xlsx":
                return FileResponse(
                    exports.xlsx(EXPORTS[export](close), title=name),
                    as_attachment=True,
                    filename=f"{name}.xlsx",
                    content_type=XLSX,
                )
            response = StreamingHttpResponse(
                EXPORTS[export](close), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
            return response
        previous = (month - dt.timedelta(days=1)).replace(day=1)
        following = (month + dt.timedelta(days=32)).replace(day=1)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Month close %(month)s") % {"month": f"{close.month:%Y-%m}"},
            "opts": self.model._meta,
            "close": close,
            "rows": [(label, yuan(fen)) for _key, label, fen in exports.close_rows(close)],
            "problems": close.problems(),
            "error": error,
            "month": f"{close.month:%Y-%m}",
            "previous": f"{previous:%Y-%m}",
            "following": f"{following:%Y-%m}",
        }
        return TemplateResponse(request, "admin/books/month_close.html", context)
