"""After settlement: holders' shares claimed on their behalf, and revenue pushed to them.

- `stakes_claim_pending` (beat): for every settled task, the stake allocations not yet claimed are claimed
  with `StakeToken.claimSharesBatch(id, holders, shares, proofs)` in batches of `STAKES_CLAIM_BATCH` holders
  (default 100, about 9M gas at <= 90k per holder, well inside a 30M block), one ledger row per batch. The
  contract skips holders who claimed by themselves, so a batch racing a holder's own claim is harmless.
- `distribute_profits` (beat): for every settled task, holders whose claimable revenue is at least
  `PROFITS_PUSH_MIN_WEI` (default 10^15 wei) get it pushed with `StakeToken.pushPayouts(id, holders)` in
  batches of `PROFITS_PUSH_BATCH` (default 100; 50k gas stipend each). The ledger key holds the pool's
  `totalDeposited` at that time, so a beat that runs again before new revenue sends nothing twice.
Every deposit, claim and payout is also an event the indexer records with its transaction.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from contracts import chain
from contracts.models import ChainTx
from contracts.services import chain_tx_enqueue
from tasks.models import Task
from training.models import StakeAllocation

logger = logging.getLogger(__name__)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


def _settled_tasks():
    return Task.objects.filter(
        chain_id=settings.CHAIN_ID,
        chain_task_id__isnull=False,
        finalization__settlement__in=["finalize", "fail"],
    ).order_by("pk")


def claim_key(task: Task, first_index: int) -> str:
    return f"claim-shares:{task.chain_id}:{task.chain_task_id}:{first_index}"


def stakes_claim_mark(*, task: Task) -> int:
    """Mark allocations whose claim batch is confirmed as claimed; returns how many were marked."""
    confirmed = ChainTx.objects.filter(
        idempotency_key__startswith=f"claim-shares:{task.chain_id}:{task.chain_task_id}:",
        status=ChainTx.Status.CONFIRMED,
    ).values_list("args", "tx_hash")
    tx_of = {str(holder).lower(): tx_hash for args, tx_hash in confirmed for holder in args[1]}
    marked = 0
    for alloc in StakeAllocation.objects.filter(task=task, claimed_tx_hash=""):
        tx_hash = tx_of.get(alloc.holder.lower())
        if tx_hash:
            StakeAllocation.objects.filter(pk=alloc.pk).update(
                claimed_tx_hash=tx_hash, claimed_at=timezone.now()
            )
            marked += 1
    return marked


def stakes_claim_pending(*, batch: int | None = None) -> dict[int, int]:
    """Claim every unclaimed allocation of every settled task, in gas-bounded batches (ledger rows, sent by
    the chain worker). Returns {task id: holders put in a batch this time}."""
    size = batch or _setting("STAKES_CLAIM_BATCH", 100)
    out: dict[int, int] = {}
    for task in _settled_tasks():
        stakes_claim_mark(task=task)
        todo = list(StakeAllocation.objects.filter(task=task, claimed_tx_hash="").order_by("leaf_index"))
        sent = 0
        for group in _batches(todo, size):
            key = claim_key(task, group[0].leaf_index)
            if ChainTx.objects.filter(idempotency_key=key).exists():
                continue  # in flight (or done: marked on a later beat)
            chain_tx_enqueue(
                key=key,
                contract_name="StakeToken",
                function="claimSharesBatch",
                args=[
                    int(task.chain_task_id),
                    [a.holder for a in group],
                    [a.shares for a in group],
                    [list(a.proof) for a in group],
                ],
                task_ref=str(task.pk),
            )
            sent += len(group)
        if sent:
            out[task.pk] = sent
    return out


def distribute_profits(*, min_wei: int | None = None, batch: int | None = None) -> dict[int, int]:
    """Push claimable revenue >= `min_wei` to claimed holders of every settled task, in batches. Returns
    {task id: holders in a push this time}. Chain reads fail loudly (`ChainError`): the beat retries."""
    threshold = _setting("PROFITS_PUSH_MIN_WEI", 10**15) if min_wei is None else int(min_wei)
    size = batch or _setting("PROFITS_PUSH_BATCH", 100)
    out: dict[int, int] = {}
    for task in _settled_tasks():
        stake_id = int(task.chain_task_id)
        holders = list(
            StakeAllocation.objects.exclude(claimed_tx_hash="")
            .filter(task=task)
            .values_list("holder", flat=True)
        )
        due = [
            h
            for h in holders
            if int(chain.call("StakeToken", "claimable", [stake_id, h])) >= max(threshold, 1)
        ]
        if not due:
            continue
        deposited = int(chain.call("StakeToken", "totalDeposited", [stake_id]))
        for i, group in enumerate(_batches(due, size)):
            chain_tx_enqueue(
                key=f"push-payouts:{task.chain_id}:{stake_id}:{deposited}:{i}",
                contract_name="StakeToken",
                function="pushPayouts",
                args=[stake_id, group],
                task_ref=str(task.pk),
            )
        out[task.pk] = len(due)
    return out
