"""Celery jobs of the marketplace (thin: call the service)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def marketplace_sync_chain_events() -> dict:
    """Beat: record NFT transfers, licence terms, listings and purchases from indexed ChainEvent rows (a
    purchase whose page was closed still lands). Idempotent; runs next to `contracts.jobs.chain_index_events`."""
    from marketplace.services import marketplace_sync_chain_events as sync

    return sync()
