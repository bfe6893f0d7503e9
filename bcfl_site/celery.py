"""The Celery app. Job modules are named `jobs.py` so they never clash with the `tasks` app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcfl_site.settings.local")

app = Celery("bcfl_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")
