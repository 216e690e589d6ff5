"""The staff back office (issue 16): the admin site, the dashboard, the account
360 page and every admin composed of several apps' parts. It sits at the top
of the service layers (it may import every app; only ``config`` names it).

Two app configs:

- ``BackofficeConfig``, the app itself (its templates override Django's admin
  templates, so it comes before the admin in ``INSTALLED_APPS``; its
  ``admin`` package registers the composed admins);
- ``StaffAdminConfig``, Django's admin app with the staff site
  (``backoffice.site``) as ``admin.site``: every ``admin.site.register`` in
  the apps lands on it.
"""

from django.apps import AppConfig, apps
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    default = True
    name = "backoffice"


class StaffAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "backoffice.site.StaffAdminSite"

    def ready(self):
        super().ready()
        # django-axes and django-otp name their apps "Axes" and "Otp_Totp":
        # staff read what they hold, in their language (axes' model names are
        # in our catalogue, accounts/admin.py).
        if apps.is_installed("axes"):
            apps.get_app_config("axes").verbose_name = _("Login records")
        if apps.is_installed("django_otp.plugins.otp_totp"):
            apps.get_app_config("otp_totp").verbose_name = _("Second factor (TOTP)")
