"""Browser endpoints, included under /accounts/siwe/ (before allauth's own /accounts/ URLs)."""

from django.urls import path

from bcfl_site.siwe import views

urlpatterns = [
    path("nonce", views.siwe_nonce, name="siwe_nonce"),
    path("verify", views.siwe_verify, name="siwe_verify"),
]
