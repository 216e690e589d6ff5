from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from ops.metrics import metrics_view

# Rule 10: the back office's name, in the staff member's language.
admin.site.site_header = _("MTlogin billing back office")
admin.site.site_title = _("MTlogin billing back office")
admin.site.index_title = _("Back office home")

urlpatterns = [
    path("admin/", admin.site.urls),
    # Issue 17: Prometheus metrics, closed without the bearer token (ops.metrics).
    path("metrics", metrics_view, name="metrics"),
    # Django's set_language: the language switcher on every page posts here.
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("accounts.urls")),
]

# Issue 20: the product's own error pages, in the site's layout and the
# visitor's language, with no detail (config.errors).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
