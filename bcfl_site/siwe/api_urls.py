"""API endpoints, included under /api/v1/auth/siwe/."""

from django.urls import path

from bcfl_site.siwe import apis

urlpatterns = [
    path("nonce", apis.SiweNonceCreateApi.as_view(), name="api_siwe_nonce"),
    path("token", apis.SiweTokenCreateApi.as_view(), name="api_siwe_token"),
]
