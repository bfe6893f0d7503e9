from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from bcfl_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status, name="status"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/siwe/", include("bcfl_site.siwe.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/v1/auth/siwe/", include("bcfl_site.siwe.api_urls")),
    path("tasks/", include("tasks.urls")),
    path("tasks/", include("training.urls")),
    path("stakes/", include("training.stakes_urls")),
    path("marketplace/", include("marketplace.urls")),
    path("api/v1/", include("tasks.api_urls")),
    path("api/v1/", include("training.api_urls")),
    path("api/v1/", include("marketplace.api_urls")),
    path("api/", include("training.metadata_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

# Unknown /api/ URLs answer in the API's error shape (bcfl_site/api_errors.py); other URLs get Django's page.
handler404 = "bcfl_site.api_errors.api_not_found"
