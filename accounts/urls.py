"""The customer pages' URLs (issue 11: these paths are the interface).

Each views module lists its own ``urlpatterns``; they are joined here under
one namespace, ``accounts``.
"""

from django.urls import path

from .views import (
    agreement,
    auth,
    dashboard,
    fapiao,
    invitations,
    money,
    public,
    service,
    transfers,
)

app_name = "accounts"

urlpatterns = [
    *public.urlpatterns,
    *auth.urlpatterns,
    *dashboard.urlpatterns,
    *agreement.urlpatterns,
    *money.urlpatterns,
    *service.urlpatterns,
    *invitations.urlpatterns,
    *fapiao.urlpatterns,
    *transfers.urlpatterns,
]

# Keep ``path`` imported for modules that extend this list in tests.
__all__ = ["app_name", "path", "urlpatterns"]
