"""Production: secrets must come from the environment; secure cookies and HSTS."""

from django.core.exceptions import ImproperlyConfigured

from bcfl_site.env import env_bool, env_int, env_str
from bcfl_site.settings.base import *  # noqa: F403
from bcfl_site.settings.base import SECRET_KEY

DEBUG = False
if SECRET_KEY.startswith("insecure-"):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY in production.")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT", str(STATIC_ROOT))  # noqa: F405
