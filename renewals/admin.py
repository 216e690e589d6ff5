from django.contrib import admin

from billing.admin.base import ViewOnlyMixin

from .models import Notification, RenewalRun


class ReadOnlyAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Written only by the engine; staff look, nobody edits."""


@admin.register(RenewalRun)
class RenewalRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "trigger",
        "at",
        "finished_at",
        "due",
        "renewed",
        "past_due",
        "ended",
        "failed",
        "progress",
    )
    list_filter = ("trigger", ("finished_at", admin.EmptyFieldListFilter))
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in RenewalRun._meta.fields]

    @admin.display(description="chunks")
    def progress(self, obj):
        return f"{obj.chunks_done}/{obj.chunks_total}"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "account",
        "to_email",
        "status",
        "created_at",
        "sent_at",
    )
    list_filter = ("kind", "status", "language")
    search_fields = ("account__name", "to_email", "subject")
    list_select_related = ("account",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Notification._meta.fields]
