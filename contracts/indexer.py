"""The event indexer: decoded logs of every deployed contract, upserted on (tx_hash, log_index).

Reads from the chain's `EventCursor.last_block + 1` up to `head - CHAIN_CONFIRMATIONS` in chunks of
`CHAIN_INDEX_MAX_BLOCKS`; each chunk's events and the cursor move in one DB transaction, so a crash
replays at most one chunk, and a replay stores nothing twice.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from contracts import chain
from contracts.models import ChainEvent, EventCursor

logger = logging.getLogger(__name__)


def store_events(chain_id: int, events: list[dict]) -> int:
    """Insert decoded events, ignoring ones already stored; returns how many were new."""
    if not events:
        return 0
    keys = {(e["tx_hash"], e["log_index"]) for e in events}
    before = ChainEvent.objects.filter(tx_hash__in={k[0] for k in keys}).count()
    ChainEvent.objects.bulk_create(
        [ChainEvent(chain_id=chain_id, **e) for e in events], ignore_conflicts=True, batch_size=500
    )
    return ChainEvent.objects.filter(tx_hash__in={k[0] for k in keys}).count() - before


def index_range(from_block: int, to_block: int, chain_id: int | None = None) -> int:
    """(Re)index an explicit block range without touching the cursor; idempotent."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    events = chain.get_logs(from_block, to_block, chain_id=chain_id)
    with transaction.atomic():
        return store_events(chain_id, events)


def chain_index_events(*, max_chunks: int = 50) -> dict:
    """Advance the cursor towards the confirmed head. Returns {"from", "to", "events", "head"}."""
    chain_id = settings.CHAIN_ID
    head = chain.block_number()
    safe_head = head - settings.CHAIN_CONFIRMATIONS
    cursor, _ = EventCursor.objects.get_or_create(chain_id=chain_id)
    start = cursor.last_block + 1
    result = {"from": start, "to": cursor.last_block, "events": 0, "head": head}
    step = max(1, settings.CHAIN_INDEX_MAX_BLOCKS)
    for _ in range(max_chunks):
        if start > safe_head:
            break
        end = min(start + step - 1, safe_head)
        events = chain.get_logs(start, end, chain_id=chain_id)
        with transaction.atomic():
            locked = EventCursor.objects.select_for_update().get(pk=cursor.pk)
            if locked.last_block != start - 1:  # another indexer moved it; let it continue
                logger.info("cursor for chain %s moved concurrently; stopping", chain_id)
                break
            result["events"] += store_events(chain_id, events)
            locked.last_block = end
            locked.save(update_fields=["last_block", "updated_at"])
        result["to"] = end
        start = end + 1
    return result
