"""Celery jobs for the chain: thin wrappers over contracts.services / contracts.indexer.

`chain_tx_*` and `chain_reconcile_pending` are routed to the `chain` queue (one worker, concurrency 1).
The services enqueue `chain_tx_send` by name (`contracts.services.SEND_JOB`), so imports go one way:
jobs -> services.
"""

from __future__ import annotations

from celery import shared_task

from contracts import indexer, services
from contracts.chain import ChainUnavailable


@shared_task(
    acks_late=True,
    autoretry_for=(ChainUnavailable,),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
)
def chain_tx_send(tx_id: int) -> str:
    """Send one ledger transaction; transient chain errors retry with backoff, a revert is final."""
    return services.chain_tx_process(tx_id=tx_id).status


@shared_task(acks_late=True)
def chain_reconcile_pending() -> dict:
    try:
        return services.chain_tx_reconcile_pending(requeue_queued_after=60)
    except ChainUnavailable as exc:  # next beat tick tries again
        return {"error": str(exc)}


@shared_task(acks_late=True)
def chain_index_events() -> dict:
    try:
        return indexer.chain_index_events()
    except ChainUnavailable as exc:
        return {"error": str(exc)}
