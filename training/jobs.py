"""Celery jobs of the `training` queue: thin wrappers over training.services (ids in, status out).

All are idempotent and `acks_late`: a job killed with its worker (kill -9) is redelivered by the broker, and
the service picks up where the database says it is. Redis redelivers only after its visibility timeout (an
hour), so a run's launch/follow chain and a task's finalize chain also hold a lease in the database, and
`training_watchdog` (beat) starts a new chain when a lease runs out (see training.services.watchdog).

Services send these jobs by name (`training.services.common.enqueue`), never importing this module.
"""

from __future__ import annotations

from celery import shared_task

FOLLOW_SLICE_SECONDS = 10.0  # short slices: node registrations and other tasks interleave on the worker
FOLLOW_POLL_SECONDS = 2.0


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def node_register(registration_id: int) -> str:
    from training.services import node_register as register

    return register(registration_id=registration_id).status


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def node_unregister_identity(identity_id: int) -> int:
    from training.services import node_unregister_identity as unregister

    return unregister(identity_id=identity_id)


@shared_task(acks_late=True)
def training_maybe_start(task_id: int) -> bool:
    from tasks.models import Task
    from training.services import training_maybe_start as maybe_start

    return maybe_start(task=Task.objects.get(pk=task_id)) is not None


@shared_task(acks_late=True)
def training_run_launch(run_id: int, token: str | None = None) -> str:
    from training.services import new_follower_token
    from training.services import training_run_launch as launch

    return launch(run_id=run_id, token=token or new_follower_token()).status


@shared_task(acks_late=True)
def training_run_follow(run_id: int, token: str | None = None) -> str:
    """Follow a run for a bounded slice, then re-enqueue (switching to a resumed attempt when there is one).

    `token` names the job chain holding the run's lease; a job without one starts a new chain (the watchdog's).
    """
    from training.services import new_follower_token, training_follow

    token = token or new_follower_token()
    state, current = training_follow(
        run_id=run_id, max_seconds=FOLLOW_SLICE_SECONDS, poll=FOLLOW_POLL_SECONDS, token=token
    )
    if state in ("running", "waiting"):
        training_run_follow.apply_async(args=[current, token], countdown=FOLLOW_POLL_SECONDS)
    return state


@shared_task(acks_late=True)
def task_finalize(task_id: int, token: str | None = None) -> str:
    """Run the task's next finalization step, then re-enqueue for the next one (or for a retry after backoff).

    `token` names the chain holding the finalization's lease; a job without one starts a new chain.
    """
    from training.services import finalize_advance, new_follower_token

    token = token or new_follower_token()
    outcome = finalize_advance(task_id=task_id, token=token)
    if outcome.state in ("more", "retry", "waiting"):
        task_finalize.apply_async(args=[task_id, token], countdown=outcome.countdown or None)
    return outcome.state


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def task_settle_failed(task_id: int) -> str:
    """Settle a failed task's escrow (`training.services.settlement.task_settle_failed`); polls every 5 s
    until the settlement is mined and recorded."""
    from training.services.settlement import task_settle_failed as settle

    state = settle(task_id=task_id)
    if state in ("waiting", "sent"):
        task_settle_failed.apply_async(args=[task_id], countdown=5)
    return state


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=3)
def final_model_export(task_id: int) -> str:
    """Export a completed task's model to ONNX (checked against torch with onnxruntime) for downloads and
    predictions; idempotent. Returns the export's sha256."""
    from training.models import FinalModel
    from training.services.exports import final_model_onnx_export

    final = FinalModel.objects.select_related("task").get(task_id=task_id)
    return final_model_onnx_export(final_model=final).sha256


@shared_task
def stakes_claim_pending() -> dict:
    """Beat: claim settled tasks' stake allocations on holders' behalf, in gas-bounded batches."""
    from training.services.payouts import stakes_claim_pending as claim

    return claim()


@shared_task
def distribute_profits() -> dict:
    """Beat: push claimable revenue above the threshold to holders, in gas-bounded batches."""
    from training.services.payouts import distribute_profits as push

    return push()


@shared_task
def training_watchdog() -> dict:
    """Beat: new launch/follow chains for runs whose chain died with its worker; pending node registrations;
    new finalize chains for finalizing tasks whose chain died."""
    from training.services import finalize_watchdog
    from training.services import training_watchdog as watchdog
    from training.services.settlement import settlement_watchdog

    return {**watchdog(), "finalize": finalize_watchdog(), "settle": settlement_watchdog()}
