"""Login records in the admin (issue 10): django-axes' failed-login attempts,
failure log and login log, read only. Only the Administrator role (and
superusers) holds their view permissions (``billing.roles``: support and
finance do not), so only they see them. Axes' own admin is off
(``AXES_ENABLE_ADMIN = False``): its actions declare no permissions. A locked
user is unlocked by waiting out ``AXES_COOLOFF_MINUTES`` or with
``manage.py axes_reset_username <name>``."""

from __future__ import annotations

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin


class ReadOnlyLoginRecordAdmin(admin.ModelAdmin):
    actions = None
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessAttempt)
class AccessAttemptAdmin(ReadOnlyLoginRecordAdmin):
    list_display = ("attempt_time", "username", "ip_address", "failures_since_start", "path_info")
    list_filter = ("path_info",)
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = (
        "attempt_time",
        "username",
        "ip_address",
        "user_agent",
        "path_info",
        "failures_since_start",
        "get_data",
        "post_data",
    )


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(ReadOnlyLoginRecordAdmin):
    list_display = ("attempt_time", "username", "ip_address", "locked_out", "path_info")
    list_filter = ("locked_out", "path_info")
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = ("attempt_time", "username", "ip_address", "user_agent", "path_info", "locked_out")


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyLoginRecordAdmin):
    list_display = ("attempt_time", "logout_time", "username", "ip_address", "path_info")
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = ("attempt_time", "logout_time", "username", "ip_address", "user_agent", "path_info")
