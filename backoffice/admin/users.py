"""The user admin as the roles see it (``billing.roles``): only superusers
add, change or delete users; the admin role may look. A view-only user page
shows no "Reset password" button (it leads to a page they may not open).

Staff read the roles by their translated names (Support, Finance,
Administrator), in the user list, on a user's page and in the group list;
the groups keep their stable code names (``support``, ``finance``, ``admin``).

Issue 16: Django's User and Group admins are replaced once, here in the back
office (``tests/test_admin_registry.py``)."""

from __future__ import annotations

import django.contrib.auth.admin  # noqa: F401  (registers User and Group first)
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from billing.roles import role_label
from core.admin_mixins import SafeTextAdminMixin


def _labels(groups) -> str:
    return ", ".join(sorted(role_label(g.name) for g in groups)) or "—"


class RoleFilter(admin.RelatedFieldListFilter):
    """Filter users by role, the roles named as staff read them."""

    def field_choices(self, field, request, model_admin):
        groups = Group.objects.order_by("name").values_list("pk", "name")
        return [(pk, role_label(name)) for pk, name in groups]


class RoleAwareUserAdmin(SafeTextAdminMixin, UserAdmin):
    list_display = ("username", "email", "roles", "is_staff", "is_superuser", "is_active")
    list_filter = ("is_staff", "is_superuser", "is_active", ("groups", RoleFilter))
    readonly_fields = ("roles",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("Roles"))
    def roles(self, obj) -> str:
        return _labels(obj.groups.all())

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups" and field is not None:
            field.label_from_instance = lambda group: role_label(group.name)
        return field

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # View only: no password button, and the roles by their names.
        return [
            (
                name,
                {
                    **opts,
                    "fields": [
                        "roles" if f == "groups" else f for f in opts["fields"] if f != "password"
                    ],
                },
            )
            for name, opts in fieldsets
        ]


class RoleGroupAdmin(GroupAdmin):
    list_display = ("role", "name")

    @admin.display(description=_("Role"), ordering="name")
    def role(self, obj) -> str:
        return role_label(obj.name)


User = get_user_model()
admin.site.unregister(User)
admin.site.register(User, RoleAwareUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, RoleGroupAdmin)
