"""Following a Flower run: ingest its rounds, watch its status and heartbeat, resume it or hand over to
finalization.

A dead ServerApp (run failed, or its heartbeat file stale) is replaced by a new run resuming after the last
ingested round (`runs.run_failed`). Asking Flower for a run's status costs a `flwr ls` process (seconds of
CPU, taken from training), so the follower asks only when the ServerApp's heartbeat is stale, when every
round is in, or every TRAINING_STATUS_POLL_SECONDS.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.utils import timezone

from tasks.models import Task
from training.models import Round, Run
from training.selectors import last_round_number
from training.services import common
from training.services.finalize import training_finished
from training.services.rounds import run_ingest
from training.services.runs import LOST, follower_claim, run_failed, training_run_launch

logger = logging.getLogger(__name__)

_STATUS_CHECKED: dict[int, float] = {}  # run pk -> time.monotonic() of this process's last `flwr ls`


def heartbeat_age(*, run: Run, now: float | None = None) -> float | None:
    """Seconds since the ServerApp last touched its heartbeat file (or since launch if it never did)."""
    now = time.time() if now is None else now
    path = (run.run_config or {}).get("heartbeat-path")
    if path and Path(path).exists():
        return now - Path(path).stat().st_mtime
    if run.started_at is None:
        return None
    return now - run.started_at.timestamp()


def serverapp_error(*, run: Run) -> str:
    """The reason the ServerApp gave for failing (its ``error-path`` file, at most 1000 characters), or ""."""
    path = (run.run_config or {}).get("error-path")
    try:
        return Path(path).read_text(errors="replace").strip()[:1000] if path else ""
    except OSError:
        return ""


def _status_due(run_pk: int) -> bool:
    """True at most once per TRAINING_STATUS_POLL_SECONDS per run (and on a process's first look)."""
    now = time.monotonic()
    if now - _STATUS_CHECKED.get(run_pk, -1e9) < float(common.setting("TRAINING_STATUS_POLL_SECONDS", 30.0)):
        return False
    _STATUS_CHECKED[run_pk] = now
    return True


def _flower_status(run: Run, link) -> str | None:
    """The run's Flower status (LOST if the SuperLink forgot it), stored on the row; None if unavailable."""
    from training.superlink import FlowerError, RunNotFound

    try:
        status = link.run_status(int(run.flower_run_id))
    except RunNotFound as exc:  # the SuperLink restarted (in-memory state): the run is gone, resume it
        logger.warning("run %s: %s; resuming", run.pk, exc)
        status = LOST
    except FlowerError as exc:  # SuperLink not answering (restarting): look again later
        logger.warning("run %s status unavailable: %s", run.pk, exc)
        return None
    if status != run.flower_status:
        Run.objects.filter(pk=run.pk).update(flower_status=status)
        run.flower_status = status
    return status


def _close_finished(run: Run, status: str) -> None:
    """Flower says the run finished: ingest its last lines, mark it completed or failed (with the reason)."""
    task = run.task
    run_ingest(run=run)  # lines written just before the end
    rounds_done = last_round_number(task=task)
    ok = status == "finished:completed" and rounds_done >= task.rounds
    run.status = Run.Status.COMPLETED if ok else Run.Status.FAILED
    run.finished_at = timezone.now()
    if status == LOST:
        run.error = (
            f"The SuperLink lost Flower run {run.flower_run_id} (it restarted) after round "
            f"{rounds_done} of {task.rounds}"
        )
    elif not ok:
        run.error = f"Flower run ended {status} after round {rounds_done} of {task.rounds}"
        reason = serverapp_error(run=run)
        if reason:
            run.error += f": {reason}"
    run.save(update_fields=["status", "finished_at", "error", "updated_at"])


def _stop_stale(run: Run, link, age: float) -> None:
    """The ServerApp stopped beating: stop its Flower run, keep what it recorded, mark the run failed."""
    from training.superlink import FlowerError

    logger.warning("run %s: ServerApp heartbeat %.0fs old; stopping and resuming", run.pk, age)
    try:
        link.stop_run(int(run.flower_run_id))
    except FlowerError as exc:
        logger.info("stop run %s: %s", run.flower_run_id, exc)
    run_ingest(run=run)
    run.status, run.finished_at = Run.Status.FAILED, timezone.now()
    done = last_round_number(task=run.task)
    run.error = f"ServerApp stopped responding (heartbeat {age:.0f}s old) after round {done}"
    run.save(update_fields=["status", "finished_at", "error", "updated_at"])


def _look_at_running(run: Run, link) -> str | None:
    """Returns "running" while the run goes on; None once this look closed it (completed or failed)."""
    age = heartbeat_age(run=run)
    stale = age is not None and age > float(common.setting("TRAINING_HEARTBEAT_TIMEOUT", 60.0))
    if not (stale or last_round_number(task=run.task) >= run.task.rounds or _status_due(run.pk)):
        return "running"
    status = _flower_status(run, link)
    if status is None:
        return "running"
    if status.startswith("finished"):
        _close_finished(run, status)
    elif stale:
        _stop_stale(run, link, age)
    else:
        return "running"
    return None


def _after_completed(task: Task) -> str:
    """Every round is in: wait for every commitRound to confirm, then hand over to finalization."""
    from contracts.models import ChainTx

    commits = list(Round.objects.filter(task=task).select_related("commit_tx"))
    failed = [r for r in commits if r.commit_tx and r.commit_tx.status == ChainTx.Status.FAILED]
    if failed:
        from training.services.runs import task_fail

        task_fail(
            task=task,
            reason=f"commitRound of round {failed[0].number} failed on chain: {failed[0].commit_tx.error}",
        )
        return "failed"
    confirmed = [r for r in commits if r.commit_tx and r.commit_tx.status == ChainTx.Status.CONFIRMED]
    if len(commits) < task.rounds or len(confirmed) < len(commits):
        return "waiting"
    training_finished(task=task)
    return "finalizing"


def training_run_follow_step(*, run_id: int, link=None) -> str:
    """One look at a run: ingest new rounds, then act on its Flower status. Idempotent.

    Returns "running" (look again later), "waiting" (all rounds in, commits pending), "resumed" (a new attempt
    was launched), "finalizing", "failed" or the task's status once it left training (the follower may stop).
    """
    link = link or common.superlink()
    run = Run.objects.select_related("task").get(pk=run_id)
    task = run.task
    if run.status == Run.Status.LAUNCHING:
        return "running"
    run_ingest(run=run)
    if task.status != Task.Status.TRAINING:
        return "failed" if task.status == Task.Status.FAILED else task.status
    if (
        run.status in (Run.Status.FAILED, Run.Status.LOST)
        and Run.objects.filter(task=task, attempt=run.attempt + 1).exists()
    ):
        return "resumed"
    if run.status == Run.Status.RUNNING and _look_at_running(run, link) == "running":
        return "running"
    if run.status == Run.Status.FAILED:
        return run_failed(run=run, link=link)
    return _after_completed(task)


def _next_run(run_id: int, *, link, token: str | None) -> int:
    """After "resumed": the attempt to follow next (launching it here when no job launched it yet)."""
    run = Run.objects.get(pk=run_id)
    nxt = Run.objects.get(task_id=run.task_id, attempt=run.attempt + 1)
    if nxt.flower_run_id is None and not nxt.is_final:
        nxt = training_run_launch(run_id=nxt.pk, link=link, follow=False, token=token)
    while nxt.status == Run.Status.LOST:  # launch interrupted and replaced by a later attempt
        nxt = Run.objects.get(task_id=nxt.task_id, attempt=nxt.attempt + 1)
    return nxt.pk


def training_follow(
    *,
    run_id: int,
    link=None,
    max_seconds: float = 60.0,
    poll: float = 2.0,
    sleep=time.sleep,
    token: str | None = None,
) -> tuple[str, int]:
    """Follow a task's runs for up to `max_seconds` (switching to resumed attempts, launching them).

    Returns (state, run id to follow next). Used by the job (which re-enqueues itself while "running") and
    by tests calling it in-process. With a `token`, every look first renews the chain's lease on the run;
    state "duplicate" means another chain holds it (this one should stop).
    """
    link = link or common.superlink()
    deadline = time.monotonic() + max_seconds
    while True:
        if not follower_claim(run_id=run_id, token=token):
            logger.info("run %s is followed by another job; this follower stops", run_id)
            return "duplicate", run_id
        state = training_run_follow_step(run_id=run_id, link=link)
        if state == "resumed":
            run_id = _next_run(run_id, link=link, token=token)
            continue
        if state not in ("running", "waiting") or time.monotonic() >= deadline:
            return state, run_id
        sleep(poll)
