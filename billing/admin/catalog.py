from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import policy, selectors, services
from billing.forms import PriceChangeForm
from billing.models import Package, PriceVersion

from .base import (
    DASH,
    ConfirmLine,
    HistoryAdmin,
    ReadOnlyInline,
    SecondStep,
    ViewOnlyMixin,
    shanghai,
    yuan,
)


class PriceVersionInline(ReadOnlyInline):
    model = PriceVersion
    verbose_name_plural = gettext_lazy("price versions (newest first)")
    readonly_fields = ["amount", "effective", "published", "published_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("published_by")

    @admin.display(description=gettext_lazy("Price per seat and period"))
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Effective from"))
    def effective(self, obj):
        return shanghai(obj.effective_from)

    @admin.display(description=gettext_lazy("Published"))
    def published(self, obj):
        return shanghai(obj.published_at)


@admin.register(Package)
class PackageAdmin(HistoryAdmin):
    list_display = [
        "code",
        "name_en",
        "name_zh",
        "kind",
        "period_months",
        "max_seats",
        "environments_limit",
        "price_now",
        "next_change",
        "is_active",
    ]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name_en", "name_zh"]
    inlines = [PriceVersionInline]
    actions = ["publish_price_change_action"]

    def get_readonly_fields(self, request, obj=None):
        # The kind and period decide how a package is billed; they are fixed once created.
        fixed = ["code", "kind", "period_months"] if obj else []
        return [*super().get_readonly_fields(request, obj), *fixed]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_publish_price_change_permission(self, request):
        return request.user.has_perm("billing.publish_price_change")

    def get_queryset(self, request):
        now = timezone.now()
        prices = PriceVersion.objects.filter(package=OuterRef("pk"))
        current = prices.filter(effective_from__lte=now).order_by("-effective_from")
        upcoming = prices.filter(effective_from__gt=now).order_by("effective_from")
        return (
            super()
            .get_queryset(request)
            .annotate(
                price_now_fen=Subquery(current.values("amount_fen")[:1]),
                next_price_fen=Subquery(upcoming.values("amount_fen")[:1]),
                next_price_from=Subquery(upcoming.values("effective_from")[:1]),
            )
        )

    @admin.display(description=gettext_lazy("Price now (per seat)"))
    def price_now(self, obj):
        return yuan(getattr(obj, "price_now_fen", None))

    @admin.display(description=gettext_lazy("Next price change"))
    def next_change(self, obj):
        fen = getattr(obj, "next_price_fen", None)
        if fen is None:
            return DASH
        return _("%(price)s from %(when)s") % {
            "price": yuan(fen),
            "when": shanghai(obj.next_price_from),
        }

    # --- money: publish a price change --------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/publish-price/",
                self.admin_site.admin_view(self.publish_price_view),
                name="billing_package_publish_price",
            ),
            *super().get_urls(),
        ]

    def billing_tools(self, request, obj):
        if not obj.is_free and request.user.has_perm("billing.publish_price_change"):
            return [(self.object_url(obj, "publish_price"), _("Publish price change"))]
        return []

    @admin.action(
        description=gettext_lazy("Publish price change…"), permissions=["publish_price_change"]
    )
    def publish_price_change_action(self, request, queryset):
        return self.redirect_one(request, queryset, "publish_price")

    @staticmethod
    def _price_preview(package, data) -> SecondStep:
        """P4: before publishing, how many auto-renewing subscriptions renew at
        the new price and from when, and how many keep the old price a cycle."""
        impact = selectors.price_change_impact(
            package=package, effective_from=data["effective_from"], now=timezone.now()
        )
        new = policy.format_fen(data["amount"])
        return SecondStep(
            intro=_("Publishing %(code)s at %(price)s per seat and period:")
            % {"code": package.code, "price": new},
            lines=_impact_lines(impact, shanghai(data["effective_from"])),
            hidden={"previewed": "True"},
            submit_label=_("Publish %(price)s") % {"price": new},
        )

    def publish_price_view(self, request, object_id):
        package = self.get_object(request, object_id)
        if package is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        current = selectors.price_in_effect(package=package, at=timezone.now())

        def call(data):
            if not data["previewed"]:
                services.price_change_check(
                    package=package,
                    amount_fen=data["amount"],
                    effective_from=data["effective_from"],
                    actor=request.user,
                )
                raise self._price_preview(package, data)
            version = services.price_change_publish(
                package=package,
                amount_fen=data["amount"],
                effective_from=data["effective_from"],
                actor=request.user,
            )
            return _(
                "Published %(code)s: %(price)s per seat and period from %(when)s (Asia/Shanghai)."
            ) % {
                "code": package.code,
                "price": policy.format_fen(version.amount_fen),
                "when": shanghai(version.effective_from),
            }

        return self.service_form_page(
            request,
            obj=package,
            form_class=PriceChangeForm,
            permission="billing.publish_price_change",
            title=_("Publish price change"),
            call=call,
            submit_label=_("Publish"),
            summary=[
                (
                    _("Package"),
                    _("%(package)s, %(kind)s")
                    % {"package": package, "kind": package.get_kind_display()},
                ),
                (_("Price now"), yuan(current.amount_fen) if current else DASH),
            ],
            intro=_(
                "A new price applies to orders confirmed and renewals run from the effective "
                "time on (P4); periods already paid keep their price. It cannot be undone."
            ),
        )


def _impact_lines(impact: selectors.PriceChangeImpact, effective: str) -> list[ConfirmLine]:
    """The P4 preview of a price change, line by line."""
    if impact.renew_at_new_price:
        renew = _(
            "%(count)s auto-renewing subscription(s) renew at the new price at the end of "
            "their current period, the first on %(first)s."
        ) % {
            "count": impact.renew_at_new_price,
            "first": shanghai(impact.first_new_price_renewal),
        }
    else:
        renew = _("No auto-renewing subscription renews at the new price this cycle.")
    keep = _(
        "%(count)s keep the old price one more cycle: their notice deadline has passed, so "
        "they could not learn of the change in time (P4)."
    ) % {"count": impact.keep_old_price_one_cycle}
    return [
        ConfirmLine(_("Effective from %(when)s (Asia/Shanghai).") % {"when": effective}),
        ConfirmLine(renew),
        ConfirmLine(keep),
    ]


@admin.register(PriceVersion)
class PriceVersionAdmin(ViewOnlyMixin, HistoryAdmin):
    list_display = ["package", "amount", "effective", "published", "published_by"]
    list_select_related = ["package", "published_by"]
    list_filter = ["package"]
    date_hierarchy = "effective_from"
    fields = ["package", "amount", "effective", "published", "published_by"]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("Price per seat and period"), ordering="amount_fen")
    def amount(self, obj):
        return yuan(obj.amount_fen)

    @admin.display(description=gettext_lazy("Effective from"), ordering="effective_from")
    def effective(self, obj):
        return shanghai(obj.effective_from)

    @admin.display(description=gettext_lazy("Published"), ordering="published_at")
    def published(self, obj):
        return shanghai(obj.published_at)
