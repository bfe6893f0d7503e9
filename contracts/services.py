"""The transaction ledger: every platform transaction goes through a `ChainTx` row.

queued -> (nonce, sign, store raw tx + hash, COMMIT) signed -> (broadcast) sent -> confirmed | failed

Locks (always taken in this order): the `ChainTx` row, then the signer's `SignerLock` row. Nonce assignment
and signing happen while holding both, so concurrent workers (threads or processes, PostgreSQL or SQLite)
never reuse or skip a nonce. Network waits (broadcast, receipt) happen after the commit, without locks.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from contracts import chain
from contracts.chain import ChainError, ChainRejected, ChainRevert, ChainUnavailable
from contracts.models import ChainTx, SignerLock
from contracts.signer import get_signer

logger = logging.getLogger(__name__)

FINAL = (ChainTx.Status.CONFIRMED, ChainTx.Status.FAILED)
LIVE = (ChainTx.Status.SIGNED, ChainTx.Status.SENT)
SEND_JOB = "contracts.jobs.chain_tx_send"
_TX_FIELDS = [
    "status",
    "sender",
    "nonce",
    "raw_tx",
    "tx_hash",
    "error",
    "error_name",
    "attempts",
    "updated_at",
]


# --- enqueue ------------------------------------------------------------------------------------


def chain_tx_create(
    *, key: str, contract_name: str, function: str, args: list, value_wei: int = 0, task_ref: str = ""
) -> tuple[ChainTx, bool]:
    """Record a transaction under its idempotency key without sending it: (row, created).

    The same key returns the existing row (a warning is logged if it was for another function).
    """
    args = chain.json_safe(list(args or []))
    defaults = {
        "chain_id": settings.CHAIN_ID,
        "contract_name": contract_name,
        "function": function,
        "args": args,
        "value_wei": Decimal(int(value_wei)),
        "task_ref": str(task_ref or ""),
    }
    try:
        with transaction.atomic():
            tx, created = ChainTx.objects.get_or_create(idempotency_key=key, defaults=defaults)
    except IntegrityError:  # a concurrent caller created it between our SELECT and INSERT
        tx, created = ChainTx.objects.get(idempotency_key=key), False
    if not created and (tx.contract_name, tx.function) != (contract_name, function):
        logger.warning(
            "idempotency key %s reused for %s.%s (row is %s.%s)",
            key,
            contract_name,
            function,
            tx.contract_name,
            tx.function,
        )
    return tx, created


def chain_tx_enqueue(
    *,
    key: str,
    contract_name: str,
    function: str,
    args: list | tuple = (),
    value_wei: int = 0,
    task_ref: str = "",
) -> ChainTx:
    """Record a platform transaction under its idempotency key and send it from the `chain` worker.

    The same key returns the existing row; a job is enqueued (after commit) unless that row is final.
    """
    tx, _created = chain_tx_create(
        key=key,
        contract_name=contract_name,
        function=function,
        args=list(args),
        value_wei=value_wei,
        task_ref=task_ref,
    )
    if tx.status not in FINAL:
        tx_id = tx.id
        transaction.on_commit(lambda: chain_tx_send_later(tx_id))
    return tx


def chain_tx_send_later(tx_id: int) -> None:
    """Hand the row to the `chain` worker (job `contracts.jobs.chain_tx_send`, routed to queue `chain`).

    By name, so this module never imports the jobs module (the jobs import the services).
    """
    current_app.send_task(SEND_JOB, args=[tx_id])


# --- process ------------------------------------------------------------------------------------


def _ensure_signer_lock(chain_id: int, address: str) -> None:
    try:
        with transaction.atomic():
            SignerLock.objects.get_or_create(chain_id=chain_id, address=address)
    except IntegrityError:
        pass


def _next_nonce(chain_id: int, address: str) -> int:
    """Smallest nonce >= the node's pending count that no live (signed/sent) row holds.

    Should be called while holding the SignerLock row. Signed-but-not-yet-broadcast rows are invisible to the
    node, hence the DB part; a nonce released by a rejected broadcast is reused, so no gap remains.
    """
    base = chain.pending_nonce(address)
    used = set(
        ChainTx.objects.filter(
            chain_id=chain_id, sender=address, status__in=LIVE, nonce__gte=base
        ).values_list("nonce", flat=True)
    )
    nonce = base
    while nonce in used:
        nonce += 1
    # Final rows holding this nonce but absent from the chain come from a reset chain (fresh anvil): release.
    for stale in ChainTx.objects.filter(chain_id=chain_id, sender=address, nonce=nonce, status__in=FINAL):
        if chain.get_receipt(stale.tx_hash) is None:
            logger.warning(
                "releasing nonce %s of %s: its tx %s is not on the chain", nonce, stale, stale.tx_hash
            )
            stale.error = (stale.error + f" [nonce {nonce} released: not on chain after a reset]").strip()
            stale.nonce = None
            stale.save(update_fields=["nonce", "error", "updated_at"])
        else:
            raise ChainError(
                f"nonce {nonce} of {address} is already mined by {stale.tx_hash}; node out of sync?"
            )
    return nonce


def _sign_queued(tx_id: int) -> ChainTx:
    """Step 1: under locks, estimate, assign the nonce, sign, store. Returns the row (maybe final)."""
    signer = get_signer()
    _ensure_signer_lock(settings.CHAIN_ID, signer.address)
    with transaction.atomic():
        tx = ChainTx.objects.select_for_update().get(pk=tx_id)
        if tx.status != ChainTx.Status.QUEUED:
            return tx
        if tx.chain_id != settings.CHAIN_ID:
            raise ChainError(
                f"{tx} is for chain {tx.chain_id}, this process is configured for {settings.CHAIN_ID}"
            )
        SignerLock.objects.select_for_update().get(chain_id=tx.chain_id, address=signer.address)
        unsigned = chain.build_call(tx.contract_name, tx.function, tx.args, int(tx.value_wei), signer.address)
        try:
            gas = chain.estimate_gas(unsigned)
        except ChainRevert as revert:  # nothing signed, no nonce consumed
            tx.status, tx.error, tx.error_name = ChainTx.Status.FAILED, revert.reason, revert.error_name
            tx.sender = signer.address
            tx.save(update_fields=_TX_FIELDS)
            logger.info("%s reverted at estimation: %s", tx, revert.reason)
            return tx
        nonce = _next_nonce(tx.chain_id, signer.address)
        full = {**unsigned, **chain.fee_fields(), "gas": gas, "nonce": nonce, "chainId": tx.chain_id}
        raw_tx, tx_hash = chain.sign(full, signer.private_key)
        tx.sender, tx.nonce, tx.raw_tx, tx.tx_hash = signer.address, nonce, raw_tx, tx_hash
        tx.status = ChainTx.Status.SIGNED
        tx.attempts += 1
        tx.save(update_fields=_TX_FIELDS)
    return tx


def _broadcast(tx: ChainTx) -> ChainTx:
    """Step 2: (re)send the stored raw transaction. A refusal marks the row failed and releases its nonce."""
    try:
        chain.broadcast(tx.raw_tx, tx.tx_hash)
    except ChainRejected as exc:
        with transaction.atomic():
            row = ChainTx.objects.select_for_update().get(pk=tx.pk)
            if row.status in LIVE and chain.get_receipt(row.tx_hash) is None:
                row.status, row.error = ChainTx.Status.FAILED, f"rejected by the node: {exc}"
                row.error_name = "Rejected"
                row.error += f" [nonce {row.nonce} released]"
                row.nonce = None
                row.save(update_fields=_TX_FIELDS)
            return row
    ChainTx.objects.filter(pk=tx.pk, status=ChainTx.Status.SIGNED).update(
        status=ChainTx.Status.SENT, updated_at=timezone.now()
    )
    tx.refresh_from_db()
    return tx


def _finalize(tx_id: int, receipt: dict) -> ChainTx:
    """Step 3: record the receipt (confirmed, or failed with the decoded revert reason)."""
    summary = chain.receipt_summary(receipt)
    revert = chain.revert_reason_of(receipt) if summary["status"] != 1 else None
    with transaction.atomic():
        tx = ChainTx.objects.select_for_update().get(pk=tx_id)
        if tx.status in FINAL:
            return tx
        tx.block_number = summary["block_number"]
        tx.gas_used = summary["gas_used"]
        tx.effective_gas_price = Decimal(summary["effective_gas_price"])
        tx.confirmed_at = timezone.now()
        if revert is None:
            tx.status = ChainTx.Status.CONFIRMED
        else:
            tx.status, tx.error, tx.error_name = ChainTx.Status.FAILED, revert.reason, revert.error_name
        tx.save(
            update_fields=[*_TX_FIELDS, "block_number", "gas_used", "effective_gas_price", "confirmed_at"]
        )
    return tx


def chain_tx_process(*, tx_id: int, receipt_timeout: float | None = None) -> ChainTx:
    """Send one ledger transaction to completion. Safe to call any number of times, from any worker.

    - confirmed/failed: no-op;
    - queued: estimate (a revert -> failed, nothing signed), nonce + sign + store + COMMIT, then broadcast;
    - signed/sent: rebroadcast the SAME raw transaction (never re-sign) or read its receipt.
    Raises `ChainUnavailable` when the node is unreachable or the receipt does not come in time; the row is
    left retryable.
    """
    tx = _sign_queued(tx_id)
    if tx.status in FINAL:
        return tx
    receipt = chain.get_receipt(tx.tx_hash) if tx.status == ChainTx.Status.SENT else None
    if receipt is None:
        tx = _broadcast(tx)
        if tx.status in FINAL:
            return tx
        receipt = chain.wait_for_receipt(tx.tx_hash, timeout=receipt_timeout)
    return _finalize(tx.id, receipt)


def chain_tx_reconcile_pending(
    *, min_age_seconds: float = 5.0, requeue_queued_after: float | None = None
) -> dict:
    """Finish signed/sent rows whose worker died or whose node lost them.

    Receipt present -> finalize; transaction unknown to the node (e.g. restarted, mempool lost) ->
    rebroadcast the stored raw transaction. Optionally re-enqueue queued rows older than `requeue_queued_after`.
    """
    counts = {"finalized": 0, "rebroadcast": 0, "pending": 0, "requeued": 0}
    cutoff = timezone.now() - timedelta(seconds=min_age_seconds)
    rows = ChainTx.objects.filter(chain_id=settings.CHAIN_ID, status__in=LIVE, updated_at__lte=cutoff)
    for tx in rows.order_by("sender", "nonce"):
        receipt = chain.get_receipt(tx.tx_hash)
        if receipt is None and not chain.transaction_known(tx.tx_hash):
            tx = _broadcast(tx)
            counts["rebroadcast"] += 1
            if tx.status in FINAL:
                continue
            receipt = chain.get_receipt(tx.tx_hash)
        if receipt is not None:
            _finalize(tx.id, receipt)
            counts["finalized"] += 1
        else:
            counts["pending"] += 1
    if requeue_queued_after is not None:
        stale = timezone.now() - timedelta(seconds=requeue_queued_after)
        for tx_id in ChainTx.objects.filter(
            chain_id=settings.CHAIN_ID, status=ChainTx.Status.QUEUED, updated_at__lte=stale
        ).values_list("id", flat=True):
            chain_tx_send_later(tx_id)
            counts["requeued"] += 1
    return counts


__all__ = [
    "ChainUnavailable",
    "chain_tx_create",
    "chain_tx_enqueue",
    "chain_tx_process",
    "chain_tx_reconcile_pending",
]
