from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import policy, selectors, services
from billing.forms import TopUpForm
from billing.models import AccountMember, LedgerEntry, Order, Subscription
from core.admin_scale import IndexedSearchMixin, LargeTableAdmin

from .base import (
    DASH,
    HistoryAdmin,
    LedgerColumnsMixin,
    ReadOnlyInline,
    RecentFormSet,
    ViewOnlyMixin,
    admin_link,
    deadline_html,
    expiry_date,
    ledger_memo,
    order_link,
    shanghai,
    yuan,
)


class RecentLedgerFormSet(RecentFormSet):
    limit = 15


class RecentOrderFormSet(RecentFormSet):
    limit = 10


class AccountMemberInline(ReadOnlyInline):
    model = AccountMember
    verbose_name = gettext_lazy("member")
    verbose_name_plural = gettext_lazy("members")
    readonly_fields = ["user", "role", "added", "suspended"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description=gettext_lazy("Added"))
    def added(self, obj):
        return shanghai(obj.added_at)

    @admin.display(description=gettext_lazy("Suspended (P3: beyond the seats)"))
    def suspended(self, obj):
        return member_suspension(obj)


def member_suspension(member: AccountMember) -> str:
    if member.suspended_at is None:
        return DASH
    return _("%(when)s: %(why)s") % {
        "when": shanghai(member.suspended_at),
        "why": member.suspended_reason,
    }


class RecentLedgerInline(LedgerColumnsMixin, ReadOnlyInline):
    model = LedgerEntry
    formset = RecentLedgerFormSet
    verbose_name_plural = format_lazy(
        gettext_lazy("recent ledger entries (latest {limit})"), limit=RecentLedgerFormSet.limit
    )
    readonly_fields = ["when", "kind", "amount", "balance_after", "order_ref", "channel", "ref"]

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-pk")

    @admin.display(description=gettext_lazy("Order"))
    def order_ref(self, obj):
        return order_link(obj.order_id)

    @admin.display(description=gettext_lazy("Reference"))
    def ref(self, obj):
        return obj.reference or ledger_memo(obj) or DASH


class RecentOrderInline(ReadOnlyInline):
    model = Order
    fk_name = "account"
    formset = RecentOrderFormSet
    verbose_name_plural = format_lazy(
        gettext_lazy("recent orders (latest {limit})"), limit=RecentOrderFormSet.limit
    )
    readonly_fields = ["number", "package", "kind", "status", "amount", "channel", "created"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("package").order_by("-pk")

    @admin.display(description=gettext_lazy("Order"))
    def number(self, obj):
        return order_link(obj.pk)

    @admin.display(description=gettext_lazy("Amount"))
    def amount(self, obj):
        return yuan(obj.amount_fen if obj.amount_fen is not None else obj.agreed_amount_fen)

    @admin.display(description=gettext_lazy("Created"))
    def created(self, obj):
        return shanghai(obj.created_at)


class LiveStatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("subscription")
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [
            ("free", _("Free")),
            ("paid", _("Paid, active")),
            ("past_due", _("Past due")),
            ("ending", _("Expiring in 7 days")),
        ]

    def queryset(self, request, queryset):
        live = Subscription.objects.exclude(status=Subscription.Status.ENDED)
        value = self.value()
        if value == "free":
            live = live.filter(period_months__isnull=True)
        elif value == "paid":
            live = live.filter(period_months__isnull=False, status=Subscription.Status.ACTIVE)
        elif value == "past_due":
            live = live.filter(status=Subscription.Status.PAST_DUE)
        elif value == "ending":
            now = timezone.now()
            live = live.filter(
                current_period_end__gte=now,
                current_period_end__lt=now + dt.timedelta(days=7),
            )
        else:
            return queryset
        return queryset.filter(pk__in=live.values("account_id"))


# Not registered here (issue 16): the back office registers the one account
# admin, composed of this class, renewals' top-up and the 360 page
# (backoffice.admin.accounts).
class AccountAdmin(LargeTableAdmin, IndexedSearchMixin, HistoryAdmin):
    list_display = [
        "name",
        "owner",
        "language",
        "balance",
        "live_package",
        "live_status",
        "live_expiry",
        "created",
    ]
    list_select_related = ["owner"]
    # Issue 10: each search is served by an index (core.admin_scale).
    search_fields = ["name", "email"]
    indexed_search = ["pk", "email__istartswith", "name__icontains"]
    search_help_text = gettext_lazy("Account number, the start of its email, or part of its name.")
    list_filter = [LiveStatusFilter, "language"]
    fieldsets = [
        (None, {"fields": ["name", "email", "language", "owner", "created"]}),
        (gettext_lazy("Money"), {"fields": ["balance", "ledger_link"]}),
        (gettext_lazy("Live subscription"), {"fields": ["subscription_summary"]}),
    ]
    readonly_fields = ["owner", "created", "balance", "ledger_link", "subscription_summary"]
    inlines = [AccountMemberInline, RecentOrderInline, RecentLedgerInline]
    actions = ["top_up_action"]

    def has_add_permission(self, request):
        # Accounts are opened by the customer (P2: billing.services.account_open).
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_top_up_balance_permission(self, request):
        return request.user.has_perm("billing.top_up_balance")

    def get_queryset(self, request):
        live = Subscription.objects.filter(account=OuterRef("pk")).exclude(
            status=Subscription.Status.ENDED
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                live_package_code=Subquery(live.values("package__code")[:1]),
                live_status_value=Subquery(live.values("status")[:1]),
                live_period_end=Subquery(live.values("current_period_end")[:1]),
            )
        )

    def save_model(self, request, obj, form, change):
        # Only the edited profile fields are written: a full save would write back
        # the balance read when the page loaded and could undo a concurrent top-up.
        if change:
            if form.changed_data:
                obj.save(update_fields=form.changed_data)
        else:
            super().save_model(request, obj, form, change)

    # --- columns ------------------------------------------------------------

    @admin.display(description=gettext_lazy("Balance"), ordering="balance_fen")
    def balance(self, obj):
        return yuan(obj.balance_fen)

    @admin.display(description=gettext_lazy("Package"), ordering="live_package_code")
    def live_package(self, obj):
        return getattr(obj, "live_package_code", None) or DASH

    @admin.display(description=gettext_lazy("Status"))
    def live_status(self, obj):
        value = getattr(obj, "live_status_value", None)
        return Subscription.Status(value).label if value else DASH

    @admin.display(description=gettext_lazy("Expiry date"), ordering="live_period_end")
    def live_expiry(self, obj):
        return expiry_date(getattr(obj, "live_period_end", None))

    @admin.display(description=gettext_lazy("Created"), ordering="created_at")
    def created(self, obj):
        return shanghai(obj.created_at)

    @admin.display(description=gettext_lazy("Ledger"))
    def ledger_link(self, obj):
        url = reverse("admin:billing_ledgerentry_changelist") + f"?account__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("All ledger entries of this account"))

    @admin.display(description=gettext_lazy("Live subscription"))
    def subscription_summary(self, obj):
        sub = selectors.live_subscription(account=obj)
        if sub is None:
            return _("No live subscription.")
        rows = [
            (_("Package"), admin_link(sub, str(sub.package))),
            (_("Status"), sub.get_status_display()),
            (_("Seats / environments"), f"{sub.seats} / {sub.environments_limit}"),
        ]
        if sub.is_paid:
            renew_price = (
                yuan(sub.renewal_price_fen) if sub.renewal_price_fen else _("current price (P4)")
            )
            rows += [
                (
                    _("Current period"),
                    f"{shanghai(sub.current_period_start)} → {shanghai(sub.current_period_end)}",
                ),
                (_("Expiry date"), expiry_date(sub.current_period_end)),
                (
                    _("Non-renewal notice deadline"),
                    deadline_html(sub.notice_deadline, sub.notice_deadline_provisional),
                ),
                (
                    _("Auto-renew"),
                    _("yes, at %(price)s") % {"price": renew_price} if sub.auto_renew else _("no"),
                ),
            ]
            if sub.past_due_since:
                rows.append((_("Past due since"), shanghai(sub.past_due_since)))
        else:
            rows.append((_("Period"), _("Free forever (P2): no period, no payment.")))
        return format_html(
            '<table class="billing-summary">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    # --- money: top up ------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/top-up/",
                self.admin_site.admin_view(self.top_up_view),
                name="billing_account_top_up",
            ),
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        if request.user.has_perm("billing.top_up_balance"):
            return [(self.object_url(obj, "top_up"), _("Top up balance"))]
        return []

    @admin.action(description=gettext_lazy("Top up balance…"), permissions=["top_up_balance"])
    def top_up_action(self, request, queryset):
        return self.redirect_one(request, queryset, "top_up")

    @staticmethod
    def top_up_arguments(request, account, data) -> dict:
        """The top-up service's arguments from the form (shared with the
        renewals app's admin, which calls the composed service)."""
        return {
            "account": account,
            "amount_fen": data["amount"],
            "channel": data["channel"],
            "reference": data["reference"],
            "memo": data["memo"],
            "confirmed_large": data["confirmed_large"],
            "actor": request.user,
        }

    def top_up(self, request, account, data) -> str:
        """Call the top-up service; the renewals app's admin replaces this with
        the composed top-up-and-renew service (it sits above billing)."""
        entry = services.balance_top_up(**self.top_up_arguments(request, account, data))
        return _("Topped up %(amount)s to %(account)s. Balance now %(balance)s.") % {
            "amount": policy.format_fen(entry.amount_fen),
            "account": account.name,
            "balance": policy.format_fen(entry.balance_after_fen),
        }

    def top_up_view(self, request, object_id):
        account = self.get_object(request, object_id)
        if account is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)

        def call(data):
            return self.top_up(request, account, data)

        return self.service_form_page(
            request,
            obj=account,
            form_class=TopUpForm,
            permission="billing.top_up_balance",
            title=_("Top up balance"),
            call=call,
            submit_label=_("Top up"),
            summary=[
                (_("Account"), account.name),
                (_("Current balance"), yuan(account.balance_fen)),
            ],
            intro=_(
                "Adds prepaid funds received from the customer. The ledger records who, when, "
                "how much and the reference; it cannot be edited afterwards."
            ),
        )


@admin.register(AccountMember)
class AccountMemberAdmin(LargeTableAdmin, ViewOnlyMixin, HistoryAdmin):
    list_display = ["account", "user", "role", "added_at", "suspended"]
    list_select_related = ["account", "user"]
    list_filter = ["role", ("suspended_at", admin.EmptyFieldListFilter)]
    search_fields = ["account__name", "user__username", "user__email"]

    @admin.display(description=gettext_lazy("Suspended (P3)"), ordering="suspended_at")
    def suspended(self, obj):
        return member_suspension(obj)
