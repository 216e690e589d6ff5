from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import authz, services
from billing.forms import AgreementVersionForm
from billing.models import Acceptance, AgreementVersion
from core.admin_scale import IndexedSearchMixin, LargeTableAdmin

from .base import HistoryAdmin, ViewOnlyMixin, shanghai


@admin.register(AgreementVersion)
class AgreementVersionAdmin(HistoryAdmin):
    """A version's text is fixed once it exists: acceptances point at it (P0).
    Item 7: a new version is published through
    ``services.agreement_version_publish`` (never in the past)."""

    list_display = ["version", "title", "effective", "acceptance_count"]
    search_fields = ["version", "title"]
    date_hierarchy = "effective_from"
    fields = ["version", "title", "effective_from", "text"]

    def get_readonly_fields(self, request, obj=None):
        # Read-only once it exists (its version pages too): a change is a new version.
        return [*super().get_readonly_fields(request, obj), *self.fields]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read only once it exists; a change is a new version

    def add_view(self, request, form_url="", extra_context=None):
        def call(data):
            version = services.agreement_version_publish(
                version=data["version"],
                title=data["title"],
                text=data["text"],
                effective_from=data["effective_from"],
                actor=request.user,
            )
            return _("Published %(title)s %(version)s, in force from %(when)s (Asia/Shanghai).") % {
                "title": version.title,
                "version": version.version,
                "when": shanghai(version.effective_from),
            }

        return self.service_form_page(
            request,
            obj=None,
            form_class=AgreementVersionForm,
            permission=authz.PUBLISH_AGREEMENT,
            title=_("Publish agreement version"),
            call=call,
            submit_label=_("Publish"),
            intro=_(
                "Customers accept the version in force (P0); a purchase cannot be confirmed "
                "until the account has accepted it. It cannot take effect in the past, and it "
                "cannot be changed once in force."
            ),
        )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_acceptances=Count("acceptances"))

    @admin.display(description=gettext_lazy("Effective from"), ordering="effective_from")
    def effective(self, obj):
        return shanghai(obj.effective_from)

    @admin.display(description=gettext_lazy("Acceptances"), ordering="n_acceptances")
    def acceptance_count(self, obj):
        return obj.n_acceptances


@admin.register(Acceptance)
class AcceptanceAdmin(LargeTableAdmin, IndexedSearchMixin, ViewOnlyMixin, HistoryAdmin):
    """P0: the record of who accepted which version, how, when and from where."""

    list_display = ["account", "user", "version", "method", "accepted", "ip_address"]
    list_select_related = ["account", "user", "agreement_version"]
    list_filter = ["method", "agreement_version"]
    # Issue 10: one acceptance per account and version; searches use indexes.
    search_fields = ["account__name", "account__email"]
    indexed_search = [
        "account_id",
        "account__email__istartswith",
        "account__name__icontains",
    ]
    search_help_text = gettext_lazy(
        "Account number, or the account's email (start) or name (part)."
    )
    fields = [
        "account",
        "user",
        "agreement_version",
        "method",
        "accepted",
        "ip_address",
        "user_agent",
    ]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("Version"), ordering="agreement_version__version")
    def version(self, obj):
        return obj.agreement_version.version

    @admin.display(description=gettext_lazy("Accepted"), ordering="accepted_at")
    def accepted(self, obj):
        return shanghai(obj.accepted_at)
