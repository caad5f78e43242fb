"""URLs of the example project: the django-ssf endpoints at the root, plus a login page,
the admin, a home page, the live SSF dashboard and the Prometheus metrics."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from django_ssf.metrics import metrics_view

from . import views

# The operator sees which site's console this is (two sites side by side in the demo).
SITE_NAME = getattr(settings, "SSF_SITE_NAME", "django-ssf example")
admin.site.site_header = f"{SITE_NAME}: administration"
admin.site.site_title = SITE_NAME
admin.site.index_title = "Operator's console"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("whoami/", views.whoami, name="whoami"),
    path("ssf/dashboard/", views.dashboard, name="ssf-dashboard"),
    path("ssf/dashboard.json", views.dashboard_json, name="ssf-dashboard-json"),
    # Prometheus: staff, or ``Authorization: Bearer $SSF_METRICS_TOKEN``.
    path("ssf/metrics", metrics_view, name="ssf-metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("django_ssf.transmitter.urls")),
    path("", include("django_ssf.receiver.urls")),
]
