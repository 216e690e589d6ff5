"""The admin app with the project's staff site (``config.admin_site``) as
``admin.site``: every ``admin.site.register`` in the apps lands on it."""

from django.apps import apps
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class StaffAdminConfig(AdminConfig):
    default_site = "config.admin_site.StaffAdminSite"

    def ready(self):
        super().ready()
        # django-axes and django-otp name their apps "Axes" and "Otp_Totp":
        # staff read what they hold, in their language (axes' model names are
        # in our catalogue, accounts/admin.py).
        if apps.is_installed("axes"):
            apps.get_app_config("axes").verbose_name = _("Login records")
        if apps.is_installed("django_otp.plugins.otp_totp"):
            apps.get_app_config("otp_totp").verbose_name = _("Second factor (TOTP)")
