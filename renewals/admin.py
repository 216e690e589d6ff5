from django.contrib import admin

from .models import Notification, RenewalRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written only by the engine; staff look, nobody edits."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
