"""Registering a task on chain and cancelling it: the creator's wallet sends `TaskRegistry.createTask` /
`cancel` from the browser; the platform builds the calldata and confirms the transaction ONLY from its
receipt and decoded events (never from what the page says). `task_sync_chain_events` confirms from indexed
events when the browser went away.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_utils import to_checksum_address

from contracts import chain, wallet_tx
from tasks.lock_objects import task_lock
from tasks.models import Task
from tasks.services.errors import ChainConfirmationError, TaskStateError
from tasks.services.lifecycle import CANCELLABLE, require_creator, task_transition

logger = logging.getLogger(__name__)

S = Task.Status


def _require_creator(task: Task, user) -> None:
    require_creator(task=task, user=user)


def _hexdata(data) -> str:
    if isinstance(data, bytes | bytearray):
        return "0x" + bytes(data).hex()
    return str(data)


def task_create_call(*, task: Task) -> dict:
    """The transaction the creator's wallet sends: {to, data, value (hex), chainId}. Calldata built server-side."""
    if not task.spec_hash:
        raise TaskStateError("The task has no spec hash yet.")
    tx = chain.build_call(
        "TaskRegistry",
        "createTask",
        [task.spec_hash, int(task.rounds), int(task.creator_share_bps)],
        value=int(task.reward_wei),
    )
    return {
        "to": tx["to"],
        "data": _hexdata(tx["data"]),
        "value": hex(int(task.reward_wei)),
        "chainId": settings.CHAIN_ID,
    }


def task_registration_start(*, task: Task, by) -> Task:
    """A draft's creator tries (again) to register it on chain: draft -> registering."""
    _require_creator(task, by)
    if task.status == S.REGISTERING:
        return task
    return task_transition(task=task, to=S.REGISTERING, note="")


def task_registration_abandon(*, task: Task, by, reason: str = "") -> Task:
    """The wallet refused or the transaction failed: registering -> draft, so the creator can retry or delete."""
    _require_creator(task, by)
    if task.status == S.DRAFT:
        return task
    return task_transition(
        task=task, to=S.DRAFT, note=reason[:500] or "Registration on chain was not completed."
    )


def _task_created_matches(task: Task, args: dict, sender: str) -> str:
    """'' if a TaskCreated event's args register exactly this task, else the first mismatch in words."""
    if str(args.get("specHash", "")).lower() != task.spec_hash.lower():
        return "its spec hash is not this task's (it registers a different task)"
    if int(args.get("reward", -1)) != int(task.reward_wei):
        return f"it escrows {args.get('reward')} wei, but the task's reward is {int(task.reward_wei)} wei"
    if int(args.get("rounds", -1)) != int(task.rounds):
        return f"it registers {args.get('rounds')} rounds, but the task has {task.rounds}"
    if int(args.get("creatorShareBps", -1)) != int(task.creator_share_bps):
        return "its creator share differs from the task's"
    if to_checksum_address(str(args.get("creator"))) != to_checksum_address(sender):
        return "its creator is not the task creator's wallet"
    return ""


def _task_mark_registered(task: Task, *, chain_task_id: int, tx_hash: str, fee_wei: Decimal | None) -> Task:
    """Record the on-chain id and move draft/registering -> recruiting. Idempotent for the same tx."""
    with transaction.atomic():
        locked = task_lock(task_id=task.pk)
        if locked.chain_task_id is not None:
            if locked.create_tx_hash.lower() == tx_hash.lower():
                return locked  # already confirmed (browser and job both got here)
            raise ChainConfirmationError("This task is already registered on chain by another transaction.")
        if locked.status == S.DRAFT:
            task_transition(task=locked, to=S.REGISTERING)
        if locked.status != S.REGISTERING:
            raise TaskStateError(
                f"Task #{task.pk} is {locked.get_status_display().lower()}, not registering."
            )
        locked.chain_id = settings.CHAIN_ID
        locked.chain_task_id = int(chain_task_id)
        locked.create_tx_hash = tx_hash.lower()
        locked.create_fee_wei = fee_wei
        locked.registered_at = timezone.now()
        locked.status_note = ""
        locked.save(
            update_fields=[
                "chain_id",
                "chain_task_id",
                "create_tx_hash",
                "create_fee_wei",
                "registered_at",
                "status_note",
                "updated_at",
            ]
        )
        task_transition(task=locked, to=S.RECRUITING)
    task.refresh_from_db()
    return task


def task_registration_confirm(*, task: Task, tx_hash: str, by, wait_seconds: float = 10.0) -> Task:
    """Confirm the creator's createTask transaction from its receipt and TaskCreated event; -> recruiting.

    Refused (a `contracts.wallet_tx.WalletTxError`, or ChainConfirmationError) unless: mined with status 1, sent
    to the TaskRegistry address, sent from the creator's wallet (their username), and its TaskCreated event
    carries this task's spec hash, reward, rounds and creator share. A reverted transaction puts the task back
    to draft. A transaction the wallet replaced (sped up) is recognised by its indexed TaskCreated event.
    """
    _require_creator(task, by)
    if task.chain_task_id is not None and task.create_tx_hash.lower() == (tx_hash or "").lower():
        return task
    if task.status not in (S.DRAFT, S.REGISTERING):
        raise TaskStateError(f"Task #{task.pk} is {task.get_status_display().lower()}; nothing to confirm.")
    expected = {
        "specHash": task.spec_hash,
        "reward": int(task.reward_wei),
        "rounds": int(task.rounds),
        "creatorShareBps": int(task.creator_share_bps),
        "creator": task.creator.username,
    }
    try:
        confirmed = wallet_tx.wallet_tx_confirm(
            tx_hash=tx_hash,
            sender=task.creator.username,
            contract_name="TaskRegistry",
            event_name="TaskCreated",
            expected_args=expected,
            action="register this task",
            who="the task creator's wallet",
            wait_seconds=wait_seconds,
        )
    except wallet_tx.TxReverted as exc:
        task_registration_abandon(
            task=task, by=by, reason=f"Transaction {tx_hash} reverted on chain: {exc.revert}"
        )
        raise ChainConfirmationError(
            "The createTask transaction failed on chain (reverted). The task is back to draft: you can retry or delete it."
        ) from exc
    return _task_mark_registered(
        task, chain_task_id=int(confirmed.args["taskId"]), tx_hash=confirmed.tx_hash, fee_wei=confirmed.fee
    )


# --- cancel (creator's wallet) ------------------------------------------------------------------


def task_cancel_call(*, task: Task, by) -> dict:
    _require_creator(task, by)
    if task.status not in CANCELLABLE or task.chain_task_id is None:
        raise TaskStateError("Only a registered task that is still recruiting can be cancelled.")
    tx = chain.build_call("TaskRegistry", "cancel", [int(task.chain_task_id)])
    return {"to": tx["to"], "data": _hexdata(tx["data"]), "value": "0x0", "chainId": settings.CHAIN_ID}


def _task_mark_cancelled(task: Task, *, tx_hash: str, note: str) -> Task:
    with transaction.atomic():
        locked = task_lock(task_id=task.pk)
        if locked.status == S.CANCELLED:
            return locked
        locked.cancel_tx_hash = tx_hash.lower()
        locked.save(update_fields=["cancel_tx_hash", "updated_at"])
        task_transition(task=locked, to=S.CANCELLED, note=note)
    task.refresh_from_db()
    return task


def task_cancel_confirm(*, task: Task, tx_hash: str, by, wait_seconds: float = 10.0) -> Task:
    """Confirm the creator's TaskRegistry.cancel from its receipt and TaskCancelled event; -> cancelled.

    Refused with a `contracts.wallet_tx.WalletTxError` (the message says why) or TaskStateError.
    """
    _require_creator(task, by)
    if task.status == S.CANCELLED:
        return task
    if task.status not in CANCELLABLE or task.chain_task_id is None:
        raise TaskStateError("Only a registered task that is still recruiting can be cancelled.")
    confirmed = wallet_tx.wallet_tx_confirm(
        tx_hash=tx_hash,
        sender=task.creator.username,
        contract_name="TaskRegistry",
        event_name="TaskCancelled",
        expected_args={"taskId": int(task.chain_task_id)},
        action="cancel this task",
        who="the task creator's wallet",
        wait_seconds=wait_seconds,
    )
    refund = int(confirmed.args["refund"])
    return _task_mark_cancelled(
        task, tx_hash=confirmed.tx_hash, note=f"Cancelled by the creator; {refund} wei refunded."
    )


def task_sync_chain_events() -> dict:
    """Confirm registrations and cancellations from indexed ChainEvent rows (the browser may have closed).

    Idempotent: tasks already in their target status are skipped.
    """
    from contracts.models import ChainEvent

    counts = {"registered": 0, "cancelled": 0, "mismatched": 0}
    events = ChainEvent.objects.filter(chain_id=settings.CHAIN_ID, contract_name="TaskRegistry")
    pending = Task.objects.filter(status__in=(S.DRAFT, S.REGISTERING), chain_task_id__isnull=True).exclude(
        spec_hash=""
    )
    for task in pending.select_related("creator"):
        for event in events.filter(event="TaskCreated", args__specHash=task.spec_hash.lower()):
            problem = _task_created_matches(task, event.args, task.creator.username)
            if problem:
                counts["mismatched"] += 1
                logger.warning(
                    "TaskCreated %s for task %s does not match: %s", event.tx_hash, task.pk, problem
                )
                continue
            try:
                _task_mark_registered(
                    task, chain_task_id=int(event.args["taskId"]), tx_hash=event.tx_hash, fee_wei=None
                )
                counts["registered"] += 1
            except (TaskStateError, ChainConfirmationError) as exc:
                logger.warning("task %s: %s", task.pk, exc)
            break
    recruiting = Task.objects.filter(
        status__in=CANCELLABLE, chain_id=settings.CHAIN_ID, chain_task_id__isnull=False
    )
    for task in recruiting:
        event = events.filter(event="TaskCancelled", args__taskId=int(task.chain_task_id)).first()
        if event is not None:
            _task_mark_cancelled(
                task, tx_hash=event.tx_hash, note="Cancelled by the creator (seen on chain)."
            )
            counts["cancelled"] += 1
    return counts
