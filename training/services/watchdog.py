"""The training watchdog (beat job): restart what a dead worker left behind.

Job chains hold leases in the database (a run's follower, a task's finalization); a worker killed with -9
takes its unacknowledged job with it and Redis gives it back only after the broker's visibility timeout (an
hour), so the watchdog starts a new chain once a lease ran out, and a late redelivery of the old chain finds
the lease taken and stops. Finalizing tasks: `training.services.finalize.finalize_watchdog`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from tasks.models import Task
from training.models import NodeRegistration, Run
from training.services import common

logger = logging.getLogger(__name__)
JOBS = {"launch": "training_run_launch", "follow": "training_run_follow", "node_register": "node_register"}


def _dead_runs(now, lease: timedelta) -> dict[str, list[int]]:
    """The latest run of each training task whose chain died: to launch (never reached Flower) or follow."""
    acted: dict[str, list[int]] = {"launch": [], "follow": []}
    latest = (
        Run.objects.filter(task__status=Task.Status.TRAINING)
        .order_by("task_id", "-attempt")
        .only("pk", "task_id", "attempt", "status", "flower_run_id", "follower_until", "created_at")
    )
    seen: set[int] = set()
    for run in latest:
        if run.task_id in seen:
            continue
        seen.add(run.task_id)
        if run.follower_until is not None and run.follower_until >= now:
            continue
        if run.follower_until is None and run.created_at > now - lease:
            continue  # its launch job is still queued
        if run.status == Run.Status.LAUNCHING and run.flower_run_id is None:
            acted["launch"].append(run.pk)
        else:
            acted["follow"].append(run.pk)
    return acted


def training_watchdog(*, now=None) -> dict[str, list[int]]:
    """Restart what a dead worker left (beat job). Returns the ids acted on, by action.

    - a training task whose latest run has no live lease (its chain died): a new launch job when the run never
      reached Flower, else a new follower; runs created less than a lease ago are left to their queued job;
    - a node registration still pending after a lease: its job again (`node_register` is idempotent).
    """
    now = now or timezone.now()
    lease = timedelta(seconds=float(common.setting("TRAINING_FOLLOWER_LEASE_SECONDS", 60.0)))
    acted = _dead_runs(now, lease)
    stale = NodeRegistration.objects.filter(
        status=NodeRegistration.Status.PENDING, updated_at__lt=now - lease
    )
    acted["node_register"] = list(stale.values_list("pk", flat=True))
    for action, ids in acted.items():
        for pk in ids:
            common.enqueue(JOBS[action], pk)
    if any(acted.values()):
        logger.warning("training watchdog restarted %s", {k: v for k, v in acted.items() if v})
    return acted
