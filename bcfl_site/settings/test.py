"""pytest settings: whatever DATABASE_URL says (SQLite by default, PostgreSQL in CI)."""

import os

from bcfl_site.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = False
# Jobs that tests enqueue (joins, bans, on_commit sends) must never reach a developer's running `make demo`
# (Redis db 0): they go to db 12, which no worker reads and tests/conftest.py flushes. Worker subprocesses
# of end-to-end tests get their own CELERY_BROKER_URL in the environment.
if "CELERY_BROKER_URL" not in os.environ:
    CELERY_BROKER_URL = CELERY_RESULT_BACKEND = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/12")
if os.environ.get("BCFL_TEST_BEAT") != "1":  # end-to-end tests that run `celery beat` set it
    CELERY_BEAT_SCHEDULE = {}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file test DB (pytest-django adds the xdist suffix): threads on the shared-cache in-memory DB fail
    # with "database table is locked", and a Celery worker subprocess cannot see an in-memory DB at all.
    # The pid keeps concurrent test runs on one machine apart.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_bcfl_{os.getpid()}.sqlite3")}  # noqa: F405
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
