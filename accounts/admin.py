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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from core.time import format_instant

# django-axes ships no Chinese: its model and field names are in our catalogue
# (same msgids, so Django's translation finds them); backoffice.apps names the app.
AXES_STRINGS = (
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("Access Attempt"),
    gettext_noop("Access lock out"),
    gettext_noop("Attempt Time"),
    gettext_noop("Expires At"),
    gettext_noop("Failed Logins"),
    gettext_noop("GET Data"),
    gettext_noop("POST Data"),
    gettext_noop("HTTP Accept"),
    gettext_noop("IP Address"),
    gettext_noop("Logout Time"),
    gettext_noop("Path"),
    gettext_noop("Session key hash (sha256)"),
    gettext_noop("The time when access attempt expires and is no longer valid."),
    gettext_noop("User Agent"),
    gettext_noop("Username"),
)


class ReadOnlyLoginRecordAdmin(admin.ModelAdmin):
    actions = None
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = None
    # Axes' __str__ shows UTC; the page names the record in Shanghai time.
    change_form_template = "admin/axes/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context = {
                **(extra_context or {}),
                "subtitle": _("%(user)s at %(when)s")
                % {"user": obj.username or "—", "when": format_instant(obj.attempt_time)},
            }
        return super().change_view(request, object_id, form_url, extra_context)

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
