from django.contrib import admin
from django.urls import path
from django.utils.translation import gettext_lazy as _

# Rule 10: the back office's name, in the staff member's language.
admin.site.site_header = _("MTlogin billing back office")
admin.site.site_title = _("MTlogin billing back office")
admin.site.index_title = _("Back office home")

urlpatterns = [
    path("admin/", admin.site.urls),
]
