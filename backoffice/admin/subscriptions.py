"""The subscription admin (issue 16: registered once, here): billing's plain
``SubscriptionAdmin`` with the notice state column, the notices inline, the
dashboard's renewal filter and the "Record a non-renewal notice" button, all
parts from ``notices.admin`` (billing sits below notices, so it cannot add
them itself)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext as _

from billing.admin import SubscriptionAdmin
from billing.models import Subscription
from notices import services as notice_services
from notices.admin import (
    NonRenewalNoticeInline,
    RenewalDueFilter,
    notice_state,
    notice_state_text,
    record_notice_url,
    with_notice_state,
)


@admin.register(Subscription)
class SubscriptionWithNoticesAdmin(SubscriptionAdmin):
    list_filter = [RenewalDueFilter, *SubscriptionAdmin.list_filter]
    fieldsets = [
        (name, {**opts, "fields": with_notice_state(opts["fields"])})
        if "auto_renew" in opts["fields"]
        else (name, opts)
        for name, opts in SubscriptionAdmin.fieldsets
    ]
    readonly_fields = with_notice_state(SubscriptionAdmin.readonly_fields)
    inlines = [*SubscriptionAdmin.inlines, NonRenewalNoticeInline]

    def billing_tools(self, request, obj):
        tools = list(super().billing_tools(request, obj))
        if (
            obj.is_paid
            and obj.status != Subscription.Status.ENDED
            and request.user.has_perm(notice_services.GIVE_PERMISSION)
        ):
            tools.insert(0, (record_notice_url(obj), _("Record a non-renewal notice")))
        return tools

    # The "Record a notice" link only for staff who may record one.
    def _notice_column(self, request, fields):
        if request.user.has_perm("notices.add_nonrenewalnotice"):
            return list(fields)
        return [notice_state_text if f is notice_state else f for f in fields]

    def get_readonly_fields(self, request, obj=None):
        return self._notice_column(request, super().get_readonly_fields(request, obj))

    def get_fieldsets(self, request, obj=None):
        return [
            (name, {**opts, "fields": self._notice_column(request, opts["fields"])})
            for name, opts in super().get_fieldsets(request, obj)
        ]
