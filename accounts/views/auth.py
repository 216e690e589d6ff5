"""Log in and out (issue 11). Django's own views with the site's templates;
django-axes throttles failed logins (settings ``AXES_*``)."""

from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
