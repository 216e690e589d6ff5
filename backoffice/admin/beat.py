"""The beat schedule's admin (django-celery-beat) with permissions on its
actions: as shipped, enabling, disabling, toggling or running a periodic task
(e.g. the renewal scan) needs no permission beyond seeing the list. Here each
needs ``change_periodictask`` (least privilege).

Issue 16: a third-party model's admin replaced once, here in the back office
(``tests/test_admin_registry.py``)."""

from __future__ import annotations

import django_celery_beat.admin  # noqa: F401  (registers PeriodicTask first)
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask


class PermittedPeriodicTaskAdmin(PeriodicTaskAdmin):
    @admin.action(
        description=PeriodicTaskAdmin.enable_tasks.short_description, permissions=["change"]
    )
    def enable_tasks(self, request, queryset):
        return super().enable_tasks(request, queryset)

    @admin.action(
        description=PeriodicTaskAdmin.disable_tasks.short_description, permissions=["change"]
    )
    def disable_tasks(self, request, queryset):
        return super().disable_tasks(request, queryset)

    @admin.action(
        description=PeriodicTaskAdmin.toggle_tasks.short_description, permissions=["change"]
    )
    def toggle_tasks(self, request, queryset):
        return super().toggle_tasks(request, queryset)

    @admin.action(description=PeriodicTaskAdmin.run_tasks.short_description, permissions=["change"])
    def run_tasks(self, request, queryset):
        return super().run_tasks(request, queryset)


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PermittedPeriodicTaskAdmin)
