from django.apps import AppConfig


class SiweConfig(AppConfig):
    name = "bcfl_site.siwe"
    label = "siwe"
    verbose_name = "Sign-In with Ethereum"
    default_auto_field = "django.db.models.BigAutoField"
