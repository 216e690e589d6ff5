"""The admin app with the project's staff site (``config.admin_site``) as
``admin.site``: every ``admin.site.register`` in the apps lands on it."""

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    default_site = "config.admin_site.StaffAdminSite"
