"""pytest settings: whatever DATABASE_URL says (SQLite by default, PostgreSQL in CI)."""

import os

from bcfl_site.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = False
if os.environ.get("BCFL_TEST_BEAT") != "1":  # end-to-end tests that run `celery beat` set it
    CELERY_BEAT_SCHEDULE = {}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file test DB (pytest-django adds the xdist suffix): threads on the shared-cache in-memory DB fail
    # with "database table is locked", and a Celery worker subprocess cannot see an in-memory DB at all.
    # The pid keeps concurrent test runs on one machine apart.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_bcfl_{os.getpid()}.sqlite3")}  # noqa: F405
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
