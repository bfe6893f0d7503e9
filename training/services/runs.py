"""Flower runs of a task: start training, launch a run (with its lease), resume a failed run, fail the task.

Once a recruiting task has `min_participants` registered nodes (or its creator presses Start),
`training_run_start` moves it to training and a job launches the Flower run. A failed run is followed by a
new attempt resuming after the last ingested round from that round's checkpoint; after
`TRAINING_MAX_ATTEMPTS` attempts, or with too few participant nodes online, the task fails with the reason.

Worker crashes: the job chain that launches and follows a run holds a lease on it (`follower_claim`,
renewed on every look). A worker killed with -9 takes its unacknowledged job with it (Redis gives it back
only after the broker's visibility timeout, an hour); once the lease runs out, the watchdog (beat) starts a
new chain, and a late redelivery of the old one finds the lease taken and stops.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tasks.models import Participation, Task
from training import defence
from training.lock_objects import task_lock
from training.models import Round, Run
from training.selectors import last_round_number, task_node_map
from training.services import common
from training.services.common import TrainingError

logger = logging.getLogger(__name__)
LOST = "finished:lost"  # our Flower status for a run the SuperLink no longer knows


def training_maybe_start(*, task: Task) -> Run | None:
    """Start training when a recruiting task has `min_participants` participants with registered nodes."""
    task.refresh_from_db(fields=["status"])
    if task.status != Task.Status.RECRUITING or len(task_node_map(task=task)) < task.min_participants:
        return None
    try:
        return training_run_start(task=task)
    except TrainingError as exc:
        logger.info("task %s not started: %s", task.pk, exc)
        return None


def _check_startable(task: Task) -> None:
    """Raise TrainingError unless the (locked, recruiting) task can start training now."""
    if task.status != Task.Status.RECRUITING:
        raise TrainingError(f"The task is {task.get_status_display().lower()}, not recruiting.")
    if task.chain_task_id is None:
        raise TrainingError("The task is not registered on chain.")
    rule = defence.RULES.get(task.aggregation_rule)
    if rule is None or not rule.available:
        available = ", ".join(r.entry.label for r in defence.RULES.values() if r.available)
        raise TrainingError(
            f"Aggregation rule {task.get_aggregation_rule_display()} is not available yet "
            f"(available: {available})."
        )
    nodes = task_node_map(task=task)
    if len(nodes) < task.min_participants:
        raise TrainingError(
            f"{len(nodes)} participant(s) have a registered node; the task needs {task.min_participants}."
        )


def training_run_start(*, task: Task, by=None) -> Run:
    """recruiting -> training and launch the first Flower run (job). `by`: the creator pressing Start.

    Needs the task on chain, `min_participants` participants with registered nodes and an implemented
    aggregation rule; raises TrainingError with the reason otherwise. Starting a task that is already
    training returns its current run.
    """
    from tasks.services import TaskStateError, task_transition

    if by is not None and (not by.is_authenticated or by.pk != task.creator_id):
        raise TrainingError("Only the task's creator can start training.")
    with transaction.atomic():
        locked = task_lock(task_id=task.pk)
        current = Run.objects.filter(task=locked).order_by("-attempt").first()
        if locked.status == Task.Status.TRAINING and current is not None:
            return current
        _check_startable(locked)
        try:
            task_transition(task=locked, to=Task.Status.TRAINING, note="")
        except TaskStateError as exc:
            raise TrainingError(str(exc)) from exc
        run = Run.objects.create(task=locked, attempt=1)
        common.enqueue("training_run_launch", run.pk)
    task.status = locked.status
    return run


def run_dir_of(*, run: Run) -> Path:
    """The run's directory under VAR_DIR: runs/<task id>/<attempt>."""
    return Path(settings.VAR_DIR) / "runs" / str(run.task_id) / str(run.attempt)


def _write_participants(run_dir: Path, nodes: dict[int, Participation]) -> Path:
    path = run_dir / "participants.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(n): p.wallet for n, p in sorted(nodes.items())}, sort_keys=True))
    return path


def _write_example_caps(run_dir: Path, nodes: dict[int, Participation]) -> Path:
    """{node id: examples the participant committed when joining}: the ServerApp refuses replies claiming more."""
    path = run_dir / "example_caps.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    caps = {str(n): int((p.data_summary or {}).get("n") or 0) for n, p in sorted(nodes.items())}
    path.write_text(json.dumps({n: c for n, c in caps.items() if c > 0}, sort_keys=True))
    return path


def banned_nodes_write(*, run: Run, nodes: dict[int, Participation] | None = None) -> Path:
    """Write the run's banned-nodes file: node ids of the task's participants whose identity (any merged
    wallet) is banned now. The ServerApp reads it before sampling and screening every round, so a ban takes
    effect at the next round, not when the node is unregistered. Atomic replace; returns the path."""
    from tasks.selectors import identity_active_ban

    if nodes is None:
        nodes = task_node_map(task=run.task)
    banned = sorted(n for n, p in nodes.items() if identity_active_ban(identity=p.identity) is not None)
    path = run_dir_of(run=run) / "banned.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(banned))
    tmp.replace(path)
    return path


def banned_nodes_refresh(*, identity) -> int:
    """After a ban of ``identity``: rewrite the banned-nodes file of every live run of a task it joined.
    Returns how many runs were updated."""
    from tasks.selectors import identity_group_ids

    live = Run.objects.filter(
        task__participations__identity_id__in=identity_group_ids(identity=identity),
        status__in=(Run.Status.LAUNCHING, Run.Status.RUNNING),
    ).distinct()
    count = 0
    for run in live.select_related("task"):
        banned_nodes_write(run=run)
        count += 1
    return count


def build_run_config(*, run: Run, nodes: dict[int, Participation]) -> dict[str, Any]:
    """The Flower run config of a task run (see training/flower_app/pyproject.toml for every key).

    Writes the run's participants file (node id -> wallet) as a side effect.
    """
    from contracts import chain

    task = run.task
    run_dir = run_dir_of(run=run)
    config: dict[str, Any] = {
        "num-server-rounds": int(task.rounds),
        "model": task.model_kind,
        "lr": float(task.learning_rate),
        "local-epochs": int(task.local_epochs),
        "batch-size": int(task.batch_size),
        "seed": int(task.pk),
        "feature-shape": "x".join(str(int(d)) for d in task.feature_shape),
        "num-classes": int(max(task.label_set)) + 1,
        "test-data-path": str(Path(task.validation_file.path).resolve()),  # the committed validation set
        "min-nodes": int(task.min_participants),
        "round-timeout": float(common.setting("TRAINING_ROUND_TIMEOUT", 600.0)),
        "aggregation-rule": task.aggregation_rule,
        "scorer": task.contribution_scorer,
        "chain-id": int(settings.CHAIN_ID),
        "registry-address": chain.deployment_address("TaskRegistry"),
        "chain-task-id": int(task.chain_task_id),
        "participants-path": str(_write_participants(run_dir, nodes)),
        "example-caps-path": str(_write_example_caps(run_dir, nodes)),
        "banned-path": str(banned_nodes_write(run=run, nodes=nodes)),
        "records-path": str(run_dir / "rounds.jsonl"),
        "output-dir": str(run_dir / "out"),
        "heartbeat-path": str(run_dir / "heartbeat"),
        "error-path": str(run_dir / "error.txt"),
    }
    dataset = (task.validation_summary or {}).get("dataset") or common.setting("TRAINING_BUNDLED_DATASET", "")
    if dataset:  # bundled data: SuperNodes started with partition-id/num-partitions read this dataset
        config["dataset"] = str(dataset)
    config.update(common.setting("TRAINING_RUN_CONFIG_EXTRA", {}) or {})
    if run.resume_from_round:
        last = Round.objects.get(task=task, number=run.resume_from_round)
        config.update(
            {
                "resume-from-round": int(run.resume_from_round),
                "initial-checkpoint": last.checkpoint_path,
                "initial-sha256": last.global_sha256,
            }
        )
    return config


def new_follower_token() -> str:
    """A new job chain's name (32 hex characters), held in a run's or finalization's lease."""
    return uuid.uuid4().hex


def follower_claim(*, run_id: int, token: str | None, seconds: float | None = None) -> bool:
    """Take or renew the lease of the job chain `token` on a run; False if another chain holds it.

    One atomic UPDATE: it succeeds when this chain already holds the lease or the lease is free or expired.
    `token=None` (in-process callers that are the only follower, e.g. tests and benchmarks) always succeeds.
    """
    if token is None:
        return True
    seconds = float(
        seconds if seconds is not None else common.setting("TRAINING_FOLLOWER_LEASE_SECONDS", 60.0)
    )
    now = timezone.now()
    free = Q(follower=token) | Q(follower_until__isnull=True) | Q(follower_until__lt=now)
    claimed = Run.objects.filter(Q(pk=run_id) & free).update(
        follower=token, follower_until=now + timedelta(seconds=seconds)
    )
    return claimed == 1


def training_run_launch(*, run_id: int, link=None, follow: bool = True, token: str | None = None) -> Run:
    """Start the Flower run of `run` (a `training` job). Idempotent; returns the run launched (maybe a later
    attempt).

    The row is marked `launching` (committed) before `flwr run`; a redelivered job that finds a launching row
    without a Flower run id cannot know whether the previous attempt started one, so it marks the row lost,
    stops Flower runs unknown to the platform, and launches a new attempt (own directory: a stray ServerApp
    can never write into a followed run's records).
    """
    from training.superlink import APP_DIR, FlowerError

    link = link or common.superlink()
    run = Run.objects.select_related("task").get(pk=run_id)
    if run.is_final or run.flower_run_id is not None:
        return run
    lease = common.setting("TRAINING_LAUNCH_LEASE_SECONDS", 180.0)
    if not follower_claim(run_id=run.pk, token=token, seconds=lease):
        logger.info("run %s: another job is launching it", run.pk)
        return run
    if run.started_at is not None:  # an earlier delivery got as far as `flwr run`
        return _relaunch_interrupted(run, link=link, follow=follow, token=token)
    config = build_run_config(run=run, nodes=task_node_map(task=run.task))
    run.run_config, run.run_dir, run.started_at = config, str(run_dir_of(run=run)), timezone.now()
    run.save(update_fields=["run_config", "run_dir", "started_at", "updated_at"])
    try:
        flower_run_id = link.start_run(APP_DIR, config)
    except FlowerError as exc:
        run.status, run.error, run.finished_at = Run.Status.FAILED, f"flwr run failed: {exc}", timezone.now()
        run.save(update_fields=["status", "error", "finished_at", "updated_at"])
        if run_failed(run=run, link=link) == "resumed":
            nxt = Run.objects.get(task_id=run.task_id, attempt=run.attempt + 1)
            return training_run_launch(run_id=nxt.pk, link=link, follow=follow, token=token)
        return run
    run.flower_run_id, run.status = str(int(flower_run_id)), Run.Status.RUNNING
    run.save(update_fields=["flower_run_id", "status", "updated_at"])
    if follow:
        common.enqueue("training_run_follow", *([run.pk] if token is None else [run.pk, token]))
    return run


def _relaunch_interrupted(run: Run, *, link, follow: bool, token: str | None) -> Run:
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.LOST, error="launch interrupted", finished_at=timezone.now()
    )
    _stop_unknown_runs(link)
    with transaction.atomic():
        nxt = next_attempt(run=run, resume_from=run.resume_from_round)
    return training_run_launch(run_id=nxt.pk, link=link, follow=follow, token=token)


def _stop_unknown_runs(link) -> None:
    known = {int(r) for r in Run.objects.exclude(flower_run_id=None).values_list("flower_run_id", flat=True)}
    try:
        runs = link.flwr_json("ls", link.connection).get("runs", [])
    except Exception as exc:  # noqa: BLE001 - best effort cleanup
        logger.warning("cannot list Flower runs: %s", exc)
        return
    for r in runs:
        if int(r["run-id"]) not in known and not str(r.get("status", "")).startswith("finished"):
            logger.warning("stopping Flower run %s unknown to the platform", r["run-id"])
            try:
                link.stop_run(int(r["run-id"]))
            except Exception as exc:  # noqa: BLE001
                logger.warning("stop run %s: %s", r["run-id"], exc)


def next_attempt(*, run: Run, resume_from: int) -> Run:
    """Should be called in a transaction. The next attempt of run's task (idempotent per attempt number)."""
    nxt, _ = Run.objects.get_or_create(
        task_id=run.task_id, attempt=run.attempt + 1, defaults={"resume_from_round": resume_from}
    )
    return nxt


def run_failed(*, run: Run, link) -> str:
    """After a failed run: "resumed" (a next attempt from the last ingested round) or "failed" (task failed)."""
    task = run.task
    # After a SuperLink restart the SuperNodes are still reconnecting: resume without counting them (the new
    # run waits for enough nodes and fails with that reason if they do not come back).
    online = None if run.flower_status == LOST else _online_participant_nodes(task, link)
    done = last_round_number(task=task)
    if online is not None and online < task.min_participants:
        task_fail(
            task=task,
            reason=f"Training stopped after round {done} of {task.rounds}: only {online} participant "
            f"node(s) online, the task needs {task.min_participants}. ({run.error})",
        )
        return "failed"
    if run.attempt >= int(common.setting("TRAINING_MAX_ATTEMPTS", 3)):
        task_fail(task=task, reason=f"Training failed {run.attempt} times; last: {run.error}")
        return "failed"
    with transaction.atomic():
        next_attempt(run=run, resume_from=done)
    return "resumed"  # the caller (follower or launcher, already a training job) launches it


def _online_participant_nodes(task: Task, link) -> int | None:
    try:
        nodes = link.list_nodes()
    except Exception as exc:  # noqa: BLE001 - unknown: do not fail the task on a CLI hiccup
        logger.warning("cannot list nodes: %s", exc)
        return None
    online = {int(n["node-id"]) for n in nodes if n.get("status") == "online"}
    return len(online & set(task_node_map(task=task)))


def task_fail(*, task: Task, reason: str) -> None:
    """A training task fails with `reason` (its status note); its unfinished runs are marked failed."""
    from tasks.services import task_transition

    task.refresh_from_db(fields=["status"])
    if task.status == Task.Status.TRAINING:
        task_transition(task=task, to=Task.Status.FAILED, note=reason[:2000])
    Run.objects.filter(task=task, status__in=(Run.Status.LAUNCHING, Run.Status.RUNNING)).update(
        status=Run.Status.FAILED, error=reason[:2000], finished_at=timezone.now()
    )
