from django.contrib.auth import views as auth_views
from django.urls import include, path

from vxm import language, views
from vxm.auth import RateLimitedLoginView

urlpatterns = [
    path("", views.home, name="home"),
    # Failed logins are rate-limited per username and per address (vxm/auth.py).
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", language.set_language, name="set_language"),
    path("s/<slug:store_slug>/catalog/", include("catalog.urls")),
    path("s/<slug:store_slug>/integrations/", include("erp.urls")),
]
