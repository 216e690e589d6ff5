"""The user admin as the roles see it (``billing.roles``): only superusers
add, change or delete users; the admin role may look. A view-only user page
shows no "Reset password" button (it leads to a page they may not open)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin


class RoleAwareUserAdmin(UserAdmin):
    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "password"]})
            for name, opts in fieldsets
        ]


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, RoleAwareUserAdmin)
