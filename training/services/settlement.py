"""The escrow's settlement on chain and the stakes behind it.

Completed task (finalize steps `stakes`, `chain_send`, `chain_confirm`): the stakes tree of the shares
(`training.stakes`) is stored as `StakeAllocation` rows and its root on `Finalization`; then two platform
transactions through the ledger: `ModelNFT.mint(creator, taskId, modelHash, stakeToken, royaltyBps)` (token
id = the task's on-chain id, which is also its stake id) and `TaskRegistry.finalize(taskId, finalModelHash,
stakesRoot)`, which moves the whole reward pool into the stake pool. Their cost does not depend on the
number of holders; holders' shares are claimed afterwards by proof (`training.services.payouts`).

Failed task (`task_settle_failed`, a job started when a task fails with its reward escrowed):
`TaskRegistry.fail(taskId, stakesRoot)`; with k of R rounds committed the contract pays reward * k / R (wei,
floor) into the stake pool under the root of the shares earned in the committed rounds, and refunds the rest
to the creator; with no committed round the root is zero and the creator gets everything back.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from eth_utils import to_checksum_address

from contracts import chain
from contracts.models import ChainTx
from contracts.services import chain_tx_enqueue
from tasks.models import Task
from training import stakes as stakes_tree_module
from training.model_facts import nft_mint_key
from training.models import Finalization, FinalModel, Round, StakeAllocation
from training.services import common
from training.services.final_steps import FinalizeError, contributions_record
from training.services.verdicts import task_shares, verdicts_and_shares

logger = logging.getLogger(__name__)

ZERO_ROOT = "0x" + "00" * 32
DEFAULT_ROYALTY_BPS = 500  # ERC-2981 royalty on NFT resales, paid to the stake pool


class FinalizePending(Exception):  # noqa: N818 - a state, not an error
    """The step waits for something outside (a transaction to be mined): ask again in `countdown` s."""

    def __init__(self, message: str, countdown: float = 2.0):
        super().__init__(message)
        self.countdown = countdown


def finalize_key(task: Task) -> str:
    return f"task-finalize:{task.chain_id}:{task.chain_task_id}"


def fail_key(task: Task) -> str:
    return f"task-fail:{task.chain_id}:{task.chain_task_id}"


def stakes_store(*, task: Task, shares: dict[str, int]) -> str:
    """Store the stakes tree of `shares` ({wallet: bps}) as `StakeAllocation` rows and its root on the task's
    `Finalization`; returns the root (0x hex). Idempotent: the same shares give the same rows and root."""
    tree = stakes_tree_module.stakes_tree(shares)
    fin, _ = Finalization.objects.get_or_create(task=task)
    if fin.stakes_root and fin.stakes_root != tree.root and fin.settled_tx_hash:
        raise FinalizeError(f"the stakes root {fin.stakes_root} is settled on chain; it cannot change")
    StakeAllocation.objects.filter(task=task).exclude(
        holder__in=[leaf.holder for leaf in tree.leaves]
    ).delete()
    for leaf in tree.leaves:
        StakeAllocation.objects.update_or_create(
            task=task,
            holder=leaf.holder,
            defaults={
                "shares": leaf.shares,
                "leaf_index": leaf.index,
                "leaf": leaf.leaf,
                "proof": list(leaf.proof),
            },
        )
    Finalization.objects.filter(pk=fin.pk).update(stakes_root=tree.root)
    return tree.root


def stakes_record(*, task: Task) -> None:
    """Finalize step: the stakes tree of the task's shares (creator + contributors, malicious excluded)."""
    stakes_store(task=task, shares=task_shares(task=task))


def _royalty_bps() -> int:
    return int(getattr(settings, "NFT_ROYALTY_BPS", DEFAULT_ROYALTY_BPS))


def chain_send(*, task: Task) -> None:
    """Finalize step: record (and send, after commit) the NFT mint and the escrow's finalize. Idempotent."""
    final = FinalModel.objects.filter(task=task).first()
    fin = Finalization.objects.filter(task=task).first()
    if final is None or fin is None or not fin.stakes_root:
        raise FinalizeError("the final model and the stakes root must be recorded first")
    chain_tx_enqueue(
        key=nft_mint_key(task),
        contract_name="ModelNFT",
        function="mint",
        args=[
            to_checksum_address(task.creator.username),
            int(task.chain_task_id),
            "0x" + final.sha256,
            chain.deployment_address("StakeToken"),
            _royalty_bps(),
        ],
        task_ref=str(task.pk),
    )
    chain_tx_enqueue(
        key=finalize_key(task),
        contract_name="TaskRegistry",
        function="finalize",
        args=[int(task.chain_task_id), "0x" + final.sha256, fin.stakes_root],
        task_ref=str(task.pk),
    )


def _confirmed(key: str, what: str) -> ChainTx:
    tx = ChainTx.objects.filter(idempotency_key=key).first()
    if tx is None:
        raise FinalizeError(f"{what} was never recorded")
    if tx.status == ChainTx.Status.FAILED:
        raise FinalizeError(f"{what} failed on chain: {tx.error or tx.error_name}")
    if tx.status != ChainTx.Status.CONFIRMED:
        raise FinalizePending(f"waiting for {what} ({tx.status})")
    return tx


def chain_confirm(*, task: Task) -> None:
    """Finalize step: both transactions mined; the settlement (whole reward to the stake pool) recorded."""
    _confirmed(nft_mint_key(task), "the NFT mint")
    _record_finalize_settlement(task=task, tx=_confirmed(finalize_key(task), "TaskRegistry.finalize"))


def _record_finalize_settlement(*, task: Task, tx: ChainTx) -> None:
    """`TaskRegistry.finalize` is mined: all rounds paid, the whole reward in the stake pool, no refund."""
    Finalization.objects.filter(task=task).update(
        settlement="finalize",
        rounds_paid=int(task.rounds),
        paid_to_stakes_wei=Decimal(int(task.reward_wei)),
        refunded_wei=Decimal(0),
        settled_tx_hash=tx.tx_hash,
    )


# --- failed tasks ---------------------------------------------------------------------------------------------


def committed_rounds(*, task: Task) -> int:
    """Rounds whose `commitRound` is confirmed, counted from round 1 without a gap (the chain's lastRound)."""
    done = set(
        Round.objects.filter(task=task, commit_tx__status=ChainTx.Status.CONFIRMED).values_list(
            "number", flat=True
        )
    )
    k = 0
    while k + 1 in done:
        k += 1
    return k


def task_settle_failed(*, task_id: int) -> str:
    """Settle a failed task's escrow on chain (idempotent; a job). Returns what it did: "not-failed",
    "not-on-chain", "waiting" (a commitRound is still in flight: try again later), "sent" or "settled".

    Contributions, verdicts and shares are computed over the committed rounds only, so what the stake pool
    receives (reward * k / R) is shared by who did those rounds.
    """
    task = Task.objects.select_related("creator").get(pk=task_id)
    if task.status != Task.Status.FAILED:
        return "not-failed"
    if task.chain_task_id is None:
        return "not-on-chain"
    fin, _ = Finalization.objects.get_or_create(task=task)
    if fin.settlement:
        return "settled"
    finalized = ChainTx.objects.filter(idempotency_key=finalize_key(task)).first()
    if finalized is not None and finalized.status == ChainTx.Status.CONFIRMED:
        # failed after TaskRegistry.finalize was mined (e.g. the NFT mint reverted): the reward is already in
        # the stake pool; record that instead of sending a `fail` the contract would refuse
        _record_finalize_settlement(task=task, tx=finalized)
        return "settled"
    if finalized is not None and finalized.status != ChainTx.Status.FAILED:
        return "waiting"  # finalize in flight: its outcome decides
    existing = ChainTx.objects.filter(idempotency_key=fail_key(task)).first()
    if existing is None:
        in_flight = Round.objects.filter(task=task, commit_tx__isnull=False).exclude(
            Q(commit_tx__status=ChainTx.Status.CONFIRMED) | Q(commit_tx__status=ChainTx.Status.FAILED)
        )
        if in_flight.exists():
            return "waiting"
        k = committed_rounds(task=task)
        root = ZERO_ROOT
        with transaction.atomic():
            if k:
                contributions_record(task=task, rounds=k)
                verdicts_and_shares(task=task, rounds=k)
                root = stakes_store(task=task, shares=task_shares(task=task))
            Finalization.objects.filter(pk=fin.pk).update(rounds_paid=k)
            chain_tx_enqueue(
                key=fail_key(task),
                contract_name="TaskRegistry",
                function="fail",
                args=[int(task.chain_task_id), root],
                task_ref=str(task.pk),
            )
        return "sent"
    return _record_failed_settlement(task=task, tx=existing)


def settlement_watchdog() -> list[int]:
    """Failed tasks on chain whose escrow is not settled yet and whose `fail` did not revert: a settle job
    each (covers a job lost with its worker). Returns their ids."""
    failed = Task.objects.filter(status=Task.Status.FAILED, chain_task_id__isnull=False).exclude(
        finalization__settlement__in=["fail", "finalize"]
    )
    ids = []
    for task in failed.order_by("pk"):
        tx = ChainTx.objects.filter(idempotency_key=fail_key(task)).first()
        if tx is None or tx.status != ChainTx.Status.FAILED:
            ids.append(task.pk)
            common.enqueue("task_settle_failed", task.pk)
    return ids


def _record_failed_settlement(*, task: Task, tx: ChainTx) -> str:
    if tx.status == ChainTx.Status.FAILED:
        logger.error("task %s: TaskRegistry.fail failed: %s", task.pk, tx.error)
        return "failed"
    if tx.status != ChainTx.Status.CONFIRMED:
        return "waiting"
    events = [
        e
        for e in chain.decode_logs("TaskRegistry", chain.get_receipt(tx.tx_hash))
        if e["event"] == "TaskFailed"
    ]
    if not events:
        raise FinalizeError(f"TaskRegistry.fail {tx.tx_hash} emitted no TaskFailed")
    args = events[0]["args"]
    Finalization.objects.filter(task=task).update(
        settlement="fail",
        rounds_paid=int(args["roundsCommitted"]),
        paid_to_stakes_wei=Decimal(int(args["paidToStakes"])),
        refunded_wei=Decimal(int(args["refunded"])),
        settled_tx_hash=tx.tx_hash,
        updated_at=timezone.now(),
    )
    return "settled"
