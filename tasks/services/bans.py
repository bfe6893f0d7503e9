"""Bans of a person (every wallet and merged identity), recorded here and on chain (`IdentityRegistry`)."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from bcfl_core import eip712
from tasks import signals
from tasks.lock_objects import ban_lock
from tasks.models import Ban, Identity, Task
from tasks.selectors import identity_root


def _ban_chain_args(ban: Ban) -> list:
    task, expires_at = ban.task, ban.expires_at
    return [
        ban.identity.chain_hash,
        int(task.chain_task_id or 0) if task else 0,
        ban.evidence_hash,
        int(expires_at.timestamp()) if expires_at else 0,
    ]


def ban_create(
    *,
    identity: Identity,
    task: Task | None,
    reason: str,
    evidence: dict,
    expires_at: datetime | None,
    by=None,
) -> Ban:
    """Ban a person (the identity's merged root), send `IdentityRegistry.ban` through the ledger and signal
    `identity_banned` (training unregisters the person's SuperNodes after commit).

    Raises ValueError for an empty reason or an expiry not in the future (None = permanent).
    """
    if not reason.strip():
        raise ValueError("A ban needs a reason.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("The expiry must be in the future (leave it empty for a permanent ban).")
    identity = identity_root(identity=identity)
    evidence_hash = eip712.keccak_hex(eip712.canonical_json(evidence or {}))
    from contracts.services import chain_tx_enqueue

    with transaction.atomic():
        ban = Ban(
            identity=identity,
            task=task,
            reason=reason.strip(),
            evidence=evidence or {},
            evidence_hash=evidence_hash,
            expires_at=expires_at,
            created_by=by,
        )
        ban.full_clean(exclude=["ban_tx", "lift_tx"])
        ban.save()
        ban.ban_tx = chain_tx_enqueue(
            key=f"ban:{ban.pk}",
            contract_name="IdentityRegistry",
            function="ban",
            args=_ban_chain_args(ban),
            task_ref=str(task.pk) if task else "",
        )
        ban.save(update_fields=["ban_tx"])
        signals.identity_banned.send(sender=Ban, ban=ban, identity=identity)
    return ban


def ban_lift(*, ban: Ban, reason: str, by) -> Ban:
    """Admins only: lift a ban, here and on chain (`IdentityRegistry.lift`). Lifting twice is a no-op.

    Locks the ban row. Raises PermissionDenied for non-staff `by`, ValueError for an empty reason.
    """
    if by is None or not by.is_staff:
        raise PermissionDenied("Only admins can lift bans.")
    if not reason.strip():
        raise ValueError("Say why the ban is lifted.")
    from contracts.services import chain_tx_enqueue

    with transaction.atomic():
        ban = ban_lock(ban_id=ban.pk)
        if ban.lifted_at is not None:
            return ban
        ban.lifted_at, ban.lift_reason, ban.lifted_by = timezone.now(), reason.strip(), by
        ban.lift_tx = chain_tx_enqueue(
            key=f"ban-lift:{ban.pk}",
            contract_name="IdentityRegistry",
            function="lift",
            args=[ban.identity.chain_hash, eip712.keccak_hex(ban.lift_reason)],
            task_ref=str(ban.task_id or ""),
        )
        ban.save(update_fields=["lifted_at", "lift_reason", "lifted_by", "lift_tx"])
    return ban
