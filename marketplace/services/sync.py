"""Reconciliation from the index: ModelNFT transfers and every Marketplace event, applied in `ChainEvent` id
order from a cursor, through the same record functions as the page confirmations (so a purchase whose page was
closed still lands, and one confirmed by both creates one record)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from contracts.models import ChainEvent
from marketplace.models import SyncCursor
from marketplace.services import records
from marketplace.services.errors import MarketplaceRefused

logger = logging.getLogger(__name__)

_APPLY = {
    ("ModelNFT", "Transfer"): lambda e: records.record_transfer(event=e),
    ("Marketplace", "LicenceTermsSet"): lambda e: records.record_terms(event=e),
    ("Marketplace", "NFTListed"): lambda e: records.record_listing(event=e),
    ("Marketplace", "NFTListingCancelled"): lambda e: records.record_unlisting(event=e),
    ("Marketplace", "LicencePurchased"): lambda e: records.record_purchase(event=e, source="index"),
    ("Marketplace", "NFTSold"): lambda e: records.record_purchase(event=e, source="index"),
}


def _as_event(row: ChainEvent) -> dict:
    return {"event": row.event, "args": row.args, "tx_hash": row.tx_hash, "block_number": row.block_number}


def marketplace_sync_chain_events(*, batch: int = 1000) -> dict:
    """Apply indexed events newer than the cursor (at most `batch`); returns counts per event name."""
    cursor, _ = SyncCursor.objects.get_or_create(name=f"marketplace:{settings.CHAIN_ID}")
    rows = (
        ChainEvent.objects.filter(
            id__gt=cursor.last_event_id,
            chain_id=settings.CHAIN_ID,
            contract_name__in=("ModelNFT", "Marketplace"),
        )
        .order_by("id")
        .only("id", "contract_name", "event", "args", "tx_hash", "block_number")[:batch]
    )
    counts: dict[str, int] = {}
    for row in rows:
        apply = _APPLY.get((row.contract_name, row.event))
        with transaction.atomic():
            if apply is not None:
                try:
                    apply(_as_event(row))
                    counts[row.event] = counts.get(row.event, 0) + 1
                except MarketplaceRefused as exc:  # not one of this platform's tokens
                    logger.info("event %s skipped: %s", row.pk, exc)
            SyncCursor.objects.filter(pk=cursor.pk).update(last_event_id=row.pk)
    return counts
