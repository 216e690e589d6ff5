"""The notice admin (issue 16: registered once, here): ``notices.admin``'s
record and withdraw pages, giving and withdrawing through the renewals
services that also queue the acknowledgement email in the same transaction.
A notice staff record (it came by email, chat or phone) is acknowledged to
the customer like one given on the account page: P5's notice is evidence for
both sides (docs/policy.md, P5)."""

from __future__ import annotations

from django.contrib import admin

from notices.admin import NonRenewalNoticeAdmin
from notices.models import NonRenewalNotice
from renewals import services as renewal_services


@admin.register(NonRenewalNotice)
class AcknowledgedNoticeAdmin(NonRenewalNoticeAdmin):
    def give_notice(self, request, **kwargs):
        return renewal_services.notice_give_acknowledged(**kwargs)

    def withdraw_notice(self, request, **kwargs):
        return renewal_services.notice_withdraw_acknowledged(**kwargs)
