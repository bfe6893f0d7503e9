"""Finalization: a resumable chain of idempotent steps after the last round is committed on chain.

`training_finished` moves the task training -> finalizing and enqueues the chain (`training.jobs.task_finalize`).
Each delivery of the job runs the next step not yet done (`finalize_advance`) and re-enqueues itself, so a
step that dies with its worker is redone by the next chain: running a step twice changes nothing. Errors:

- transient (`TRANSIENT_ERRORS`: I/O, database busy): retried with exponential backoff
  (`TRAINING_FINALIZE_RETRY_BACKOFF` s, doubled each time), at most `TRAINING_FINALIZE_MAX_RETRIES` times
  per step; then the task fails;
- anything else (a missing or altered checkpoint, a bug): the task fails at once.

A failed finalization leaves the task `failed` with the step and reason in its status note, never stuck in
`finalizing`. The chain holds a lease on the task's `Finalization` row like the run follower's; the beat
watchdog (`finalize_watchdog`) starts a new chain for a finalizing task whose lease ran out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from tasks.models import Task
from training.lock_objects import finalization_lock
from training.models import Finalization
from training.services import common
from training.services.final_steps import (
    contributions_record,
    final_model_save,
    model_card_write,
    task_complete,
)
from training.services.settlement import FinalizePending, chain_confirm, chain_send, stakes_record
from training.services.verdicts import verdicts_and_shares

logger = logging.getLogger(__name__)

FinalizeStep = Callable[..., None]  # step(task=task), idempotent: running it twice changes nothing

# The steps, in order (training.services.final_steps and .settlement).
FINALIZE_STEPS: list[tuple[str, FinalizeStep]] = [
    ("final_model", final_model_save),
    ("contributions", contributions_record),
    ("verdicts", verdicts_and_shares),
    ("stakes", stakes_record),  # the stakes Merkle tree of (holder, shares)
    (
        "chain_send",
        chain_send,
    ),  # ModelNFT.mint + TaskRegistry.finalize (reward -> stake pool), via the ledger
    ("chain_confirm", chain_confirm),  # waits (FinalizePending) until both are mined
    ("model_card", model_card_write),  # after the chain: the card names the mint and settlement transactions
    ("complete", task_complete),
]
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, OperationalError, InterfaceError)


@dataclass(frozen=True)
class FinalizeOutcome:
    """What one look did. state: "more" (next step due now), "retry" (after `countdown` s), "waiting" (for
    the chain, ask again after `countdown` s), "completed",
    "failed", "duplicate" (another chain holds the lease) or "idle" (the task is not finalizing)."""

    state: str
    step: str = ""
    countdown: float = 0.0


def _lease_seconds() -> float:
    return float(common.setting("TRAINING_FOLLOWER_LEASE_SECONDS", 60.0))


def training_finished(*, task: Task) -> None:
    """All rounds ingested and committed on chain: training -> finalizing, then the finalize chain (job)."""
    from tasks.services import task_transition

    task.refresh_from_db(fields=["status"])
    if task.status != Task.Status.TRAINING:
        return
    with transaction.atomic():
        task_transition(
            task=task, to=Task.Status.FINALIZING, note=f"{task.rounds} rounds committed on chain."
        )
        Finalization.objects.get_or_create(task=task)
        common.enqueue("task_finalize", task.pk)


def finalize_claim(*, task_id: int, token: str | None, seconds: float | None = None) -> bool:
    """Take or renew chain `token`'s lease on the task's finalization; False if another chain holds it.

    `token=None` (in-process callers, e.g. tests) always succeeds. Creates the Finalization row if missing.
    """
    if token is None:
        return True
    Finalization.objects.get_or_create(task_id=task_id)
    now = timezone.now()
    free = Q(follower=token) | Q(follower_until__isnull=True) | Q(follower_until__lt=now)
    until = now + timedelta(seconds=float(seconds if seconds is not None else _lease_seconds()))
    return (
        Finalization.objects.filter(Q(task_id=task_id) & free).update(follower=token, follower_until=until)
        == 1
    )


def _next_step(fin: Finalization) -> tuple[str, FinalizeStep] | None:
    return next(((n, s) for n, s in FINALIZE_STEPS if n not in fin.steps_done), None)


def _run_step(task: Task, name: str, step: FinalizeStep) -> None:
    """The step's database writes and its "done" mark commit together."""
    with transaction.atomic():
        step(task=task)
        fin = finalization_lock(task_id=task.pk)
        if name not in fin.steps_done:
            fin.steps_done = [*fin.steps_done, name]
        fin.attempts, fin.error = 0, ""
        if _next_step(fin) is None:
            fin.status = Finalization.Status.COMPLETED
        fin.save(update_fields=["steps_done", "attempts", "error", "status", "updated_at"])


def finalize_fail(*, task: Task, step: str, reason: str) -> None:
    """Fail the finalizing task: status note "Finalization failed at step <step>: <reason>". Idempotent."""
    from tasks.services import task_transition

    note = f"Finalization failed at step {step}: {reason}"[:2000]
    with transaction.atomic():
        task.refresh_from_db(fields=["status"])
        if task.status == Task.Status.FINALIZING:
            task_transition(task=task, to=Task.Status.FAILED, note=note)
        fin = finalization_lock(task_id=task.pk)
        fin.status, fin.error = Finalization.Status.FAILED, note
        fin.save(update_fields=["status", "error", "updated_at"])
    logger.warning("task %s: %s", task.pk, note)


def _transient(task: Task, name: str, exc: BaseException, token: str | None) -> FinalizeOutcome:
    """Count a transient failure: a retry after backoff, or the task fails once retries are used up."""
    with transaction.atomic():
        fin = finalization_lock(task_id=task.pk)
        fin.attempts += 1
        fin.error = f"{type(exc).__name__}: {exc}"[:2000]
        fin.save(update_fields=["attempts", "error", "updated_at"])
    limit = int(common.setting("TRAINING_FINALIZE_MAX_RETRIES", 5))
    if fin.attempts > limit:
        finalize_fail(task=task, step=name, reason=f"{fin.error} (tried {fin.attempts} times)")
        return FinalizeOutcome("failed", name)
    countdown = float(common.setting("TRAINING_FINALIZE_RETRY_BACKOFF", 5.0)) * 2 ** (fin.attempts - 1)
    finalize_claim(
        task_id=task.pk, token=token, seconds=countdown + _lease_seconds()
    )  # keep it while waiting
    logger.warning(
        "task %s finalize step %s failed (%s); retry %s in %.0fs", task.pk, name, exc, fin.attempts, countdown
    )
    return FinalizeOutcome("retry", name, countdown)


def finalize_advance(*, task_id: int, token: str | None = None) -> FinalizeOutcome:
    """Run the next finalization step not done yet (one job delivery). Idempotent; never raises for a step's
    error (it is retried or fails the task, see the module docstring)."""
    task = Task.objects.get(pk=task_id)
    if task.status != Task.Status.FINALIZING:
        state = {Task.Status.COMPLETED: "completed", Task.Status.FAILED: "failed"}.get(task.status, "idle")
        return FinalizeOutcome(state)
    if not finalize_claim(task_id=task_id, token=token):
        logger.info("task %s is finalized by another job; this one stops", task_id)
        return FinalizeOutcome("duplicate")
    fin, _ = Finalization.objects.get_or_create(task_id=task_id)
    pending = _next_step(fin)
    if pending is None:  # every step done but the task not moved on (cannot happen: "complete" moves it)
        finalize_fail(task=task, step="complete", reason="every step ran but the task is still finalizing")
        return FinalizeOutcome("failed", "complete")
    name, step = pending
    try:
        _run_step(task, name, step)
    except FinalizePending as exc:  # waiting on the chain: not a failure, no retry counted
        finalize_claim(task_id=task.pk, token=token, seconds=exc.countdown + _lease_seconds())
        return FinalizeOutcome("waiting", name, exc.countdown)
    except TRANSIENT_ERRORS as exc:
        return _transient(task, name, exc, token)
    except Exception as exc:  # noqa: BLE001 - a permanent error: the task fails with the reason
        logger.exception("task %s finalize step %s", task_id, name)
        finalize_fail(task=task, step=name, reason=f"{type(exc).__name__}: {exc}")
        return FinalizeOutcome("failed", name)
    return FinalizeOutcome(
        "completed" if _next_step(Finalization.objects.get(task_id=task_id)) is None else "more", name
    )


def task_finalize(
    *, task_id: int, token: str | None = None, sleep: Callable[[float], None] | None = None
) -> str:
    """Run the whole chain in-process (tests, demos without a worker): every step, retries after `sleep(s)`
    (no wait when None). Returns the final state ("completed", "failed", "duplicate" or "idle"), or
    "waiting" when a step waits for the chain and `sleep` is None."""
    while True:
        outcome = finalize_advance(task_id=task_id, token=token)
        if outcome.state in ("retry", "waiting") and sleep is not None:
            sleep(outcome.countdown)
        elif outcome.state == "waiting" or outcome.state not in ("more", "retry"):
            return outcome.state


def finalize_watchdog(*, now=None) -> list[int]:
    """Finalizing tasks whose chain died (lease expired, or no chain started a lease ago): a new chain each
    (job). Returns their task ids."""
    now = now or timezone.now()
    ago = now - timedelta(seconds=_lease_seconds())
    dead = Task.objects.filter(status=Task.Status.FINALIZING).filter(
        Q(finalization__isnull=True, updated_at__lt=ago)
        | Q(finalization__follower_until__isnull=True, finalization__created_at__lt=ago)
        | Q(finalization__follower_until__lt=now)
    )
    ids = list(dead.order_by("pk").values_list("pk", flat=True))
    for task_id in ids:
        common.enqueue("task_finalize", task_id)
    if ids:
        logger.warning("finalize watchdog restarted tasks %s", ids)
    return ids
