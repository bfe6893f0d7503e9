"""Celery jobs for the chain: thin wrappers over contracts.services / contracts.indexer.

`chain_tx_*` and `chain_reconcile_pending` are routed to the `chain` queue (one worker, concurrency 1).
The services enqueue `chain_tx_send` by name (`contracts.services.SEND_JOB`), so imports go one way:
jobs -> services.
"""

from __future__ import annotations

import logging

from celery import shared_task

from contracts import indexer, services
from contracts.chain import ChainUnavailable
from contracts.models import ChainTx

log = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    autoretry_for=(ChainUnavailable,),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
)
def chain_tx_send(tx_id: int) -> str:
    """Send one ledger transaction; transient chain errors retry with backoff, a revert is final.

    A job for a row this database does not have (a message left in the broker by an earlier database, e.g.
    after `make clean-demo`, or by another checkout on the same Redis database) is dropped with a warning.
    """
    try:
        return services.chain_tx_process(tx_id=tx_id).status
    except ChainTx.DoesNotExist:
        log.warning(
            "chain_tx_send: no ledger row %s in this database; job dropped (left over in the broker)", tx_id
        )
        return "missing"


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
