"""Celery jobs of the task domain (thin: call the service)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def task_sync_chain_events() -> dict:
    """Beat: confirm `registering` tasks and creator cancellations from indexed ChainEvent rows.

    Idempotent. Schedule it next to `contracts.jobs.chain_index_events`, e.g. every 10 seconds.
    """
    from tasks.services import task_sync_chain_events as sync

    return sync()
