"""Write side of the task domain. Views, APIs, admin and jobs call these; nothing else writes status.

Locks: a task row (`select_for_update`) before its participations; identities by pk.
Browser-sent transactions (createTask, cancel) are confirmed ONLY from the receipt and its decoded events.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import File
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_utils import is_address, to_checksum_address

from bcfl_core import eip712
from contracts import chain
from contracts.chain import ChainError, ChainUnavailable
from tasks.models import Ban, Identity, IdentityWallet, Participation, Task, TrustedIssuer

logger = logging.getLogger(__name__)

S = Task.Status
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.REGISTERING, S.CANCELLED}),
    S.REGISTERING: frozenset({S.DRAFT, S.RECRUITING, S.FAILED}),
    S.RECRUITING: frozenset({S.TRAINING, S.CANCELLED, S.FAILED}),
    S.TRAINING: frozenset({S.FINALIZING, S.FAILED}),
    S.FINALIZING: frozenset({S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
CANCELLABLE = (S.RECRUITING,)
COUNTED_PARTICIPATIONS = (
    Participation.Status.JOINED,
    Participation.Status.ACTIVE,
    Participation.Status.COMPLETED,
)
_TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")


class TaskStateError(Exception):
    """An illegal status change (e.g. completed -> recruiting)."""


class ChainConfirmationError(Exception):
    """A submitted transaction does not prove what the page claims; the message says why, in plain words."""


class CredentialError(ValueError):
    """A uniqueness credential was refused; the message says why."""


class JoinRefused(Exception):
    """A join was refused. `code` is stable for clients; `message` explains in plain words."""

    CODES = (
        "not_recruiting", "full", "spec_mismatch", "banned", "already_joined", "bad_signature",
        "credential_required", "wrong_wallet", "not_on_chain",
    )  # fmt: skip

    def __init__(self, code: str, message: str, *, ban: Ban | None = None):
        assert code in self.CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.ban = ban


# --- state machine ------------------------------------------------------------------------------


def task_transition(task: Task, to: str, *, note: str | None = None) -> Task:
    """Move `task` to status `to` if the table allows it; re-entering the current status is a no-op.

    Locks the task row (re-read under the lock, so two workers cannot both move it). `task` is updated in place.
    """
    to = S(to)
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.status == to:
            task.status = locked.status
            return task
        if to not in ALLOWED_TRANSITIONS[S(locked.status)]:
            raise TaskStateError(
                f"Task #{task.pk} cannot go from {S(locked.status).label.lower()} to {to.label.lower()}"
                f" (allowed: {', '.join(sorted(ALLOWED_TRANSITIONS[S(locked.status)])) or 'none, it is final'})."
            )
        locked.status = to
        fields = ["status", "updated_at"]
        if note is not None:
            locked.status_note = note
            fields.append("status_note")
        locked.save(update_fields=fields)
    task.status = to
    if note is not None:
        task.status_note = note
    return task


def _require_creator(task: Task, user) -> None:
    if user is None or not user.is_authenticated or task.creator_id != user.pk:
        raise PermissionDenied("Only the task's creator can do this.")


# --- create and register on chain ---------------------------------------------------------------


def file_sha256(fileobj) -> str:
    digest = hashlib.sha256()
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    for chunk in fileobj.chunks() if hasattr(fileobj, "chunks") else iter(lambda: fileobj.read(1 << 20), b""):
        digest.update(chunk)
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    return digest.hexdigest()


def task_spec_hash(task: Task) -> str:
    return eip712.keccak_hex(eip712.canonical_json(task.spec()))


def task_create(
    *,
    creator,
    title: str,
    model_kind: str,
    learning_rate: float,
    local_epochs: int,
    batch_size: int,
    feature_shape: list[int],
    label_set: list[int],
    min_samples_per_participant: int,
    rounds: int,
    min_participants: int,
    max_participants: int,
    aggregation_rule: str,
    reward_wei: int,
    creator_share_bps: int,
    validation_file: File,
    description: str = "",
    licence_terms: str = "",
    requires_credential: bool = False,
    validation_summary: dict | None = None,
) -> Task:
    """Save a draft (validation set in private storage, spec hash committed), then move it to `registering`."""
    task = Task(
        creator=creator, title=title, description=description, model_kind=model_kind,
        learning_rate=learning_rate, local_epochs=local_epochs, batch_size=batch_size,
        feature_shape=list(feature_shape), label_set=list(label_set),
        min_samples_per_participant=min_samples_per_participant, rounds=rounds,
        min_participants=min_participants, max_participants=max_participants,
        aggregation_rule=aggregation_rule, reward_wei=Decimal(int(reward_wei)),
        creator_share_bps=creator_share_bps, licence_terms=licence_terms,
        requires_credential=requires_credential, validation_summary=validation_summary or {},
        spec_salt=uuid.uuid4().hex, chain_id=settings.CHAIN_ID,
    )  # fmt: skip
    task.validation_sha256 = file_sha256(validation_file)
    task.validation_file = validation_file
    task.full_clean(exclude=["validation_file", "spec_hash"])
    with transaction.atomic():
        task.save()  # stores the file under PRIVATE_MEDIA_ROOT
        task.spec_hash = task_spec_hash(task)
        task.save(update_fields=["spec_hash"])
        task_transition(task, S.REGISTERING)
    return task


def task_create_call(*, task: Task) -> dict:
    """The transaction the creator's wallet sends: {to, data, value (hex), chainId}. Calldata built server-side."""
    if not task.spec_hash:
        raise TaskStateError("The task has no spec hash yet.")
    tx = chain.build_call(
        "TaskRegistry", "createTask", [task.spec_hash, int(task.rounds), int(task.creator_share_bps)],
        value=int(task.reward_wei),
    )  # fmt: skip
    return {"to": tx["to"], "data": _hexdata(tx["data"]), "value": hex(int(task.reward_wei)),
            "chainId": settings.CHAIN_ID}  # fmt: skip


def task_registration_start(*, task: Task, by) -> Task:
    """A draft's creator tries (again) to register it on chain: draft -> registering."""
    _require_creator(task, by)
    if task.status == S.REGISTERING:
        return task
    return task_transition(task, S.REGISTERING, note="")


def task_registration_abandon(*, task: Task, by, reason: str = "") -> Task:
    """The wallet refused or the transaction failed: registering -> draft, so the creator can retry or delete."""
    _require_creator(task, by)
    if task.status == S.DRAFT:
        return task
    return task_transition(task, S.DRAFT, note=reason[:500] or "Registration on chain was not completed.")


def _receipt_for(tx_hash: str, wait_seconds: float) -> dict:
    if not _TX_HASH_RE.match(tx_hash or ""):
        raise ChainConfirmationError(
            "That is not a transaction hash (expected 0x followed by 64 hex digits)."
        )
    try:
        receipt = chain.get_receipt(tx_hash)
        if receipt is None and wait_seconds > 0:
            receipt = chain.wait_for_receipt(tx_hash, timeout=wait_seconds)
    except ChainUnavailable as exc:
        raise ChainConfirmationError(
            "The transaction is not mined yet (or the chain is unreachable); try again in a few seconds."
        ) from exc
    if receipt is None:
        raise ChainConfirmationError("The transaction is not mined yet; try again in a few seconds.")
    return receipt


def _check_registry_tx(receipt: dict, *, expected_from: str, action: str) -> None:
    registry = to_checksum_address(chain.deployment_address("TaskRegistry"))
    to = receipt.get("to")
    if not to or to_checksum_address(to) != registry:
        raise ChainConfirmationError(
            f"This transaction was not sent to the TaskRegistry contract ({registry}), so it cannot {action}."
        )
    sender = to_checksum_address(receipt["from"])
    if sender != to_checksum_address(expected_from):
        raise ChainConfirmationError(
            f"This transaction was sent by {sender}, not by the task creator's wallet {expected_from}; "
            f"only the creator's own transaction can {action}."
        )


def _fee(receipt: dict) -> Decimal:
    return Decimal(int(receipt.get("gasUsed") or 0) * int(receipt.get("effectiveGasPrice") or 0))


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
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.chain_task_id is not None:
            if locked.create_tx_hash.lower() == tx_hash.lower():
                return locked  # already confirmed (browser and job both got here)
            raise ChainConfirmationError("This task is already registered on chain by another transaction.")
        if locked.status == S.DRAFT:
            task_transition(locked, S.REGISTERING)
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
        locked.save(update_fields=["chain_id", "chain_task_id", "create_tx_hash", "create_fee_wei",
                                   "registered_at", "status_note", "updated_at"])  # fmt: skip
        task_transition(locked, S.RECRUITING)
    task.refresh_from_db()
    return task


def task_registration_confirm(*, task: Task, tx_hash: str, by, wait_seconds: float = 10.0) -> Task:
    """Confirm the creator's createTask transaction from its receipt and TaskCreated event; -> recruiting.

    Refused (ChainConfirmationError) unless: mined with status 1, sent to the TaskRegistry address, sent from
    the creator's wallet (their username), and its TaskCreated event carries this task's spec hash, reward,
    rounds and creator share. A reverted transaction puts the task back to draft.
    """
    _require_creator(task, by)
    if task.chain_task_id is not None and task.create_tx_hash.lower() == (tx_hash or "").lower():
        return task
    if task.status not in (S.DRAFT, S.REGISTERING):
        raise TaskStateError(f"Task #{task.pk} is {task.get_status_display().lower()}; nothing to confirm.")
    receipt = _receipt_for(tx_hash, wait_seconds)
    _check_registry_tx(receipt, expected_from=task.creator.username, action="register this task")
    if int(receipt["status"]) != 1:
        task_registration_abandon(task=task, by=by, reason=f"Transaction {tx_hash} reverted on chain.")
        raise ChainConfirmationError(
            "The createTask transaction failed on chain (reverted). The task is back to draft: you can retry or delete it."
        )
    events = [e for e in chain.decode_logs("TaskRegistry", receipt) if e["event"] == "TaskCreated"]
    if not events:
        raise ChainConfirmationError("This transaction did not create a task (no TaskCreated event).")
    problems = [_task_created_matches(task, e["args"], receipt["from"]) for e in events]
    for event, problem in zip(events, problems, strict=True):
        if not problem:
            return _task_mark_registered(
                task, chain_task_id=int(event["args"]["taskId"]), tx_hash=tx_hash, fee_wei=_fee(receipt)
            )
    raise ChainConfirmationError(f"This transaction does not register this task: {problems[0]}.")


def task_delete(*, task: Task, by) -> None:
    """Delete a draft (and its validation file). Refused if a TaskCreated event for its spec hash exists."""
    _require_creator(task, by)
    if task.status != S.DRAFT:
        raise TaskStateError("Only a draft can be deleted; cancel a registered task instead.")
    from contracts.models import ChainEvent

    if ChainEvent.objects.filter(event="TaskCreated", args__specHash=task.spec_hash).exists():
        raise TaskStateError(
            "This task was registered on chain after all; it will show up as recruiting shortly."
        )
    storage, name = task.validation_file.storage, task.validation_file.name
    task.delete()
    if name:
        transaction.on_commit(lambda: storage.delete(name))


# --- cancel (creator's wallet) ------------------------------------------------------------------


def task_cancel_call(*, task: Task, by) -> dict:
    _require_creator(task, by)
    if task.status not in CANCELLABLE or task.chain_task_id is None:
        raise TaskStateError("Only a registered task that is still recruiting can be cancelled.")
    tx = chain.build_call("TaskRegistry", "cancel", [int(task.chain_task_id)])
    return {"to": tx["to"], "data": _hexdata(tx["data"]), "value": "0x0", "chainId": settings.CHAIN_ID}


def _task_mark_cancelled(task: Task, *, tx_hash: str, note: str) -> Task:
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.status == S.CANCELLED:
            return locked
        locked.cancel_tx_hash = tx_hash.lower()
        locked.save(update_fields=["cancel_tx_hash", "updated_at"])
        task_transition(locked, S.CANCELLED, note=note)
    task.refresh_from_db()
    return task


def task_cancel_confirm(*, task: Task, tx_hash: str, by, wait_seconds: float = 10.0) -> Task:
    """Confirm the creator's TaskRegistry.cancel from its receipt and TaskCancelled event; -> cancelled."""
    _require_creator(task, by)
    if task.status == S.CANCELLED:
        return task
    if task.status not in CANCELLABLE or task.chain_task_id is None:
        raise TaskStateError("Only a registered task that is still recruiting can be cancelled.")
    receipt = _receipt_for(tx_hash, wait_seconds)
    _check_registry_tx(receipt, expected_from=task.creator.username, action="cancel this task")
    if int(receipt["status"]) != 1:
        raise ChainConfirmationError(
            "The cancel transaction failed on chain (reverted); the task is unchanged."
        )
    for event in chain.decode_logs("TaskRegistry", receipt):
        if event["event"] == "TaskCancelled" and int(event["args"]["taskId"]) == int(task.chain_task_id):
            refund = int(event["args"]["refund"])
            return _task_mark_cancelled(
                task, tx_hash=tx_hash, note=f"Cancelled by the creator; {refund} wei refunded."
            )
    raise ChainConfirmationError(
        "This transaction did not cancel this task (no matching TaskCancelled event)."
    )


def task_mark_failed(*, task: Task, reason: str, by=None) -> Task:
    """Admin/platform: stop a task that cannot go on. The escrow stays on chain (cancel needs the creator)."""
    if task.status == S.FAILED:
        return task
    who = f" by {by.username}" if by is not None else ""
    return task_transition(task, S.FAILED, note=f"Marked failed{who}: {reason}")


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


# --- identity -----------------------------------------------------------------------------------


def pkh_did(address: str, chain_id: int | None = None) -> str:
    return f"did:pkh:eip155:{chain_id or settings.CHAIN_ID}:{to_checksum_address(address)}"


def _root(identity: Identity) -> Identity:
    seen = set()
    while identity.merged_into_id is not None and identity.pk not in seen:
        seen.add(identity.pk)
        identity = identity.merged_into
    return identity


def identity_for_wallet(address: str) -> Identity:
    """The person behind `address`: its merged (credential) identity, or a did:pkh identity created on first use."""
    if not is_address(address):
        raise ValueError(f"{address!r} is not an Ethereum address")
    address = to_checksum_address(address)
    link = IdentityWallet.objects.select_related("identity").filter(address=address).first()
    if link is not None:
        return _root(link.identity)
    try:
        with transaction.atomic():
            identity, _ = Identity.objects.get_or_create(
                did=pkh_did(address), defaults={"kind": Identity.Kind.PKH}
            )
            IdentityWallet.objects.create(address=address, identity=identity)
    except IntegrityError:  # a concurrent request linked it first
        identity = IdentityWallet.objects.select_related("identity").get(address=address).identity
    return _root(identity)


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


@transaction.atomic
def identity_link_credential(*, wallet: str, credential: dict, signature: str) -> Identity:
    """Verify a trusted issuer's EIP-712 UniquenessCredential for `wallet` and link the wallet to that person.

    `credential` = {"subject": address, "nullifier": 0x bytes32, "expiresAt": unix seconds}. The wallet's
    did:pkh identity is merged into the nullifier identity, so bans of one apply to all the person's wallets.
    """
    try:
        subject = to_checksum_address(credential["subject"])
        nullifier = str(credential["nullifier"]).lower()
        expires_at = int(credential["expiresAt"])
        message = eip712.credential_typed_data(
            chain_id=settings.CHAIN_ID, subject=subject, nullifier=nullifier, expires_at=expires_at
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CredentialError(f"The credential is malformed: {exc}") from exc
    if subject != to_checksum_address(wallet):
        raise CredentialError(
            f"This credential is for {subject}, not for your wallet {to_checksum_address(wallet)}."
        )
    if _ts(expires_at) <= timezone.now():
        raise CredentialError("This credential has expired; ask the issuer for a new one.")
    try:
        issuer_address = eip712.recover_signer(message, signature)
    except eip712.SignatureError as exc:
        raise CredentialError(f"The credential's signature is invalid: {exc}") from exc
    issuer = TrustedIssuer.objects.filter(address__iexact=issuer_address).first()
    if issuer is None or not issuer.active:
        raise CredentialError(
            f"The credential was signed by {issuer_address}, which is not an active trusted issuer."
        )

    current = identity_for_wallet(subject)
    person, _ = Identity.objects.get_or_create(
        nullifier=nullifier,
        defaults={
            "did": f"did:bcfl:nullifier:{nullifier}",
            "kind": Identity.Kind.NULLIFIER,
            "issuer": issuer,
        },
    )
    if current.pk != person.pk and current.kind == Identity.Kind.NULLIFIER:
        raise CredentialError("This wallet is already linked to a different person's credential.")
    person.issuer = issuer
    person.credential = {
        "subject": subject,
        "nullifier": nullifier,
        "expiresAt": expires_at,
        "signature": signature,
    }
    person.credential_expires_at = _ts(expires_at)
    person.save(update_fields=["issuer", "credential", "credential_expires_at"])
    if current.pk != person.pk:
        Identity.objects.filter(pk=current.pk).update(merged_into=person)
        IdentityWallet.objects.filter(address=subject).update(identity=person)
    return person


def identity_group_ids(identity: Identity) -> list[int]:
    """The person's identity and every identity merged into it."""
    root = _root(identity)
    return [root.pk, *Identity.objects.filter(merged_into=root).values_list("pk", flat=True)]


def identity_active_ban(identity: Identity) -> Ban | None:
    """The active ban (latest expiry first, permanent first) of the person, if any."""
    bans = Ban.objects.active().filter(identity_id__in=identity_group_ids(identity)).select_related("task")
    permanent = bans.filter(expires_at__isnull=True).first()
    return permanent or bans.order_by("-expires_at").first()


# --- bans ---------------------------------------------------------------------------------------


def ban_create(*, identity: Identity, task: Task | None, reason: str, evidence: dict,
               expires_at: datetime | None, by=None) -> Ban:  # fmt: skip
    """Ban a person (the identity's merged root) and send `IdentityRegistry.ban` through the ledger."""
    if not reason.strip():
        raise ValueError("A ban needs a reason.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("The expiry must be in the future (leave it empty for a permanent ban).")
    identity = _root(identity)
    evidence_hash = eip712.keccak_hex(eip712.canonical_json(evidence or {}))
    with transaction.atomic():
        ban = Ban(identity=identity, task=task, reason=reason.strip(), evidence=evidence or {},
                  evidence_hash=evidence_hash, expires_at=expires_at, created_by=by)  # fmt: skip
        ban.full_clean(exclude=["ban_tx", "lift_tx"])
        ban.save()
        from contracts.services import chain_tx_enqueue

        ban.ban_tx = chain_tx_enqueue(
            key=f"ban:{ban.pk}",
            contract_name="IdentityRegistry",
            function="ban",
            args=[
                identity.chain_hash,
                int(task.chain_task_id or 0) if task else 0,
                evidence_hash,
                int(expires_at.timestamp()) if expires_at else 0,
            ],  # fmt: skip
            task_ref=str(task.pk) if task else "",
        )
        ban.save(update_fields=["ban_tx"])
        from training.services import node_unregister_request

        node_unregister_request(identity=identity)  # the person's SuperNodes lose access (job, after commit)
    return ban


def ban_lift(*, ban: Ban, reason: str, by) -> Ban:
    """Admins only: lift a ban, here and on chain (`IdentityRegistry.lift`). Lifting twice is a no-op."""
    if by is None or not by.is_staff:
        raise PermissionDenied("Only admins can lift bans.")
    if not reason.strip():
        raise ValueError("Say why the ban is lifted.")
    with transaction.atomic():
        ban = Ban.objects.select_for_update().select_related("identity").get(pk=ban.pk)
        if ban.lifted_at is not None:
            return ban
        ban.lifted_at, ban.lift_reason, ban.lifted_by = timezone.now(), reason.strip(), by
        from contracts.services import chain_tx_enqueue

        ban.lift_tx = chain_tx_enqueue(
            key=f"ban-lift:{ban.pk}",
            contract_name="IdentityRegistry",
            function="lift",
            args=[ban.identity.chain_hash, eip712.keccak_hex(ban.lift_reason)],
            task_ref=str(ban.task_id or ""),
        )
        ban.save(update_fields=["lifted_at", "lift_reason", "lifted_by", "lift_tx"])
    return ban


# --- join ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Summary:
    feature_shape: list[int]
    examples_per_label: dict[str, int]
    n: int


def _parse_summary(summary: dict) -> _Summary:
    """The summary as `bcfl_core.dataspec.data_summary` makes it; JoinRefused(spec_mismatch) if malformed."""
    try:
        shape = [int(d) for d in summary["feature_shape"]]
        per_label = {str(int(k)): int(v) for k, v in dict(summary["examples_per_label"]).items()}
        n = int(summary["n"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JoinRefused(
            "spec_mismatch",
            "The data summary is malformed: it needs feature_shape (list of ints), examples_per_label "
            "({label: count}) and n (total examples).",
        ) from exc
    if any(v < 0 for v in per_label.values()) or sum(per_label.values()) != n:
        raise JoinRefused("spec_mismatch", "The data summary is inconsistent: label counts must add up to n.")
    return _Summary(shape, per_label, n)


def check_summary_against_spec(summary: dict, task: Task) -> list[str]:
    parsed = _parse_summary(summary)
    try:
        from bcfl_core.dataspec import check_against_spec
    except ImportError:  # pragma: no cover - training is part of the project; kept importable alone
        check_against_spec = _check_against_spec
    return check_against_spec(
        {
            "feature_shape": parsed.feature_shape,
            "examples_per_label": parsed.examples_per_label,
            "n": parsed.n,
        },
        task.data_spec(),
    )


def _check_against_spec(summary: dict, spec: dict) -> list[str]:
    problems = []
    if list(summary["feature_shape"]) != list(spec["feature_shape"]):
        problems.append(
            f"Each example should have shape {spec['feature_shape']}, not {summary['feature_shape']}."
        )
    outside = sorted(set(summary["examples_per_label"]) - {str(v) for v in spec["labels"]}, key=int)
    if outside:
        problems.append(f"Labels {', '.join(outside)} are not in the task's label set.")
    if summary["n"] < spec["min_samples"]:
        problems.append(
            f"The task needs at least {spec['min_samples']} examples, your data has {summary['n']}."
        )
    return problems


def join_message(*, task: Task, participant: str, node_public_key: str, data_summary: dict) -> dict:
    """The EIP-712 Join message for this task on this chain (what the participant must sign)."""
    if task.chain_task_id is None:
        raise JoinRefused("not_on_chain", "This task is not registered on chain yet.")
    return eip712.join_typed_data(
        chain_id=settings.CHAIN_ID,
        verifying_contract=chain.deployment_address("TaskRegistry"),
        task_id=int(task.chain_task_id),
        participant=participant,
        node_public_key=node_public_key,
        data_summary=data_summary,
    )


def participation_join(*, task: Task, user, participant: str, node_public_key: str, data_summary: dict,
                       signature: str) -> Participation:  # fmt: skip
    """Join `task` with a signed EIP-712 Join; refused with a `JoinRefused(code, message)` otherwise.

    Checks, in order: task recruiting, signature (by `participant`, the signed-in wallet), bans of the person
    (all their wallets), credential, already joined (same wallet or same person), full, data spec.
    """
    if task.status != S.RECRUITING:
        raise JoinRefused(
            "not_recruiting",
            f"This task is {task.get_status_display().lower()}, not recruiting participants.",
        )
    if not is_address(participant or ""):
        raise JoinRefused("bad_signature", "participant must be an Ethereum address.")
    participant = to_checksum_address(participant)
    if user is None or not user.is_authenticated or user.username.lower() != participant.lower():
        raise JoinRefused("wrong_wallet", "You can only join with the wallet you are signed in with.")
    node_public_key = (node_public_key or "").strip()
    if not 16 <= len(node_public_key) <= 4096:
        raise JoinRefused("bad_signature", "The node public key is missing or has an impossible length.")
    message = join_message(task=task, participant=participant, node_public_key=node_public_key,
                           data_summary=data_summary)  # fmt: skip
    try:
        signer = eip712.recover_signer(message, signature or "")
    except eip712.SignatureError as exc:
        raise JoinRefused("bad_signature", f"The join signature is invalid: {exc}") from exc
    if signer != participant:
        raise JoinRefused(
            "bad_signature",
            f"The join signature was made by {signer}, not by {participant}, or over different data "
            "(task id, node key and data summary must be exactly those sent).",
        )
    identity = identity_for_wallet(participant)
    ban = identity_active_ban(identity)
    if ban is not None:
        until = f"until {ban.expires_at:%Y-%m-%d %H:%M} UTC" if ban.expires_at else "permanently"
        raise JoinRefused("banned", f"Your identity is banned {until}: {ban.reason}", ban=ban)
    if task.requires_credential and (
        identity.kind != Identity.Kind.NULLIFIER
        or (identity.credential_expires_at is not None and identity.credential_expires_at <= timezone.now())
    ):
        raise JoinRefused(
            "credential_required",
            "This task only accepts wallets with a valid uniqueness credential from a trusted issuer; "
            "link one on your identity page first.",
        )
    problems = check_summary_against_spec(data_summary, task)
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.status != S.RECRUITING:
            raise JoinRefused("not_recruiting", "This task stopped recruiting.")
        existing = Participation.objects.filter(task=locked).filter(
            wallet=participant
        ) | Participation.objects.filter(task=locked, identity_id__in=identity_group_ids(identity))
        if existing.exists():
            raise JoinRefused(
                "already_joined", "You (this wallet or another wallet of yours) already joined this task."
            )
        count = Participation.objects.filter(task=locked, status__in=COUNTED_PARTICIPATIONS).count()
        if count >= locked.max_participants:
            raise JoinRefused("full", f"This task is full ({locked.max_participants} participants).")
        if problems:
            raise JoinRefused(
                "spec_mismatch", "Your data does not fit the task's data spec: " + " ".join(problems)
            )
        participation = Participation(
            task=locked, user=user, wallet=participant, identity=identity, node_public_key=node_public_key,
            node_public_key_hash=message["message"]["nodePublicKeyHash"], data_summary=data_summary,
            data_summary_hash=message["message"]["dataSummaryHash"], join_signature=signature,
        )  # fmt: skip
        participation.full_clean()
        participation.save()
        from training.services import node_registration_request

        # Registers the node key with the SuperLink after commit (a `training` job), then checks whether
        # the task has enough registered participants to start.
        node_registration_request(participation=participation)
    return participation


def _hexdata(data) -> str:
    if isinstance(data, bytes | bytearray):
        return "0x" + bytes(data).hex()
    return str(data)


__all__ = [
    "ALLOWED_TRANSITIONS",
    "ChainConfirmationError",
    "ChainError",
    "CredentialError",
    "JoinRefused",
    "TaskStateError",
    "ban_create",
    "ban_lift",
    "identity_for_wallet",
    "identity_link_credential",
    "participation_join",
    "task_cancel_confirm",
    "task_create",
    "task_registration_confirm",
    "task_transition",
]
