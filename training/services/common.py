"""Plumbing shared by the training services: the refusal error, settings, the SuperLink handle, job sends.

Jobs are sent by name (`training.jobs.<name>`) after the current transaction commits, so services never
import `training.jobs` (which imports the services): no import cycle, and a test can replace `enqueue`
in this one module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction

JOBS_MODULE = "training.jobs"


class TrainingError(Exception):
    """A training action was refused; the message says why, in plain words."""


def setting(name: str, default: Any) -> Any:
    """A training setting (`settings.<name>`), or `default` when the settings module does not define it."""
    return getattr(settings, name, default)


def superlink():
    """A handle on the platform SuperLink for flwr CLI calls (no process is started)."""
    from training.superlink import SuperLink

    return SuperLink(
        var_dir=Path(settings.VAR_DIR),
        address=settings.SUPERLINK_ADDRESS,
        flwr_home=Path(settings.FLWR_HOME),
        cert_hosts=tuple(settings.SUPERLINK_CERT_HOSTS),
    )


def enqueue(job_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send the job `training.jobs.<job_name>` with `args` (JSON values) after the transaction commits.

    Outside a transaction it is sent at once. `countdown`: seconds the broker holds it back.
    """

    def send() -> None:
        current_app.send_task(f"{JOBS_MODULE}.{job_name}", args=list(args), countdown=countdown or None)

    transaction.on_commit(send)
