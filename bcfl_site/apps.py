from django.apps import AppConfig


class BcflSiteConfig(AppConfig):
    name = "bcfl_site"
    verbose_name = "BCFL site"
