"""pytest settings: whatever DATABASE_URL says (SQLite by default, PostgreSQL in CI)."""

from bcfl_site.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE = {}
