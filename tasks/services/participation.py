"""Joining a task: a participant's EIP-712 `Join` (wallet, node key, data summary) checked step by step.

`participation_join` signals `participation_joined` inside its transaction (training registers the node key).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_utils import is_address, to_checksum_address

from bcfl_core import eip712
from bcfl_core.dataspec import check_against_spec
from contracts import chain
from tasks import signals
from tasks.lock_objects import task_lock
from tasks.models import Identity, Participation, Task
from tasks.selectors import (
    identity_active_ban,
    identity_group_ids,
    task_counted_participations,
    task_participation_of_person,
)
from tasks.services.errors import JoinRefused
from tasks.services.identities import identity_for_wallet

S = Task.Status


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


def check_summary_against_spec(*, summary: dict, task: Task) -> list[str]:
    """Problems (plain sentences; empty = fits) of a participant's data summary against the task's data spec.

    Raises JoinRefused(spec_mismatch) when the summary is malformed.
    """
    parsed = _parse_summary(summary)
    return check_against_spec(
        {
            "feature_shape": parsed.feature_shape,
            "examples_per_label": parsed.examples_per_label,
            "n": parsed.n,
        },
        task.data_spec(),
    )


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


@dataclass(frozen=True)
class _SignedJoin:
    participant: str  # checksummed
    node_public_key: str  # stripped
    data_summary: dict
    signature: str
    message: dict  # the EIP-712 Join the participant signed


def _refuse_contract_wallet(participant: str) -> None:
    """Raise JoinRefused(contract_wallet) when `participant` is a smart-contract wallet (it has code).

    Such a wallet (e.g. a Safe, signed in through EIP-1271) may create tasks, buy models and hold stakes, but
    cannot train: the training client signs every model update with the wallet's own key, round after round
    (EIP-712 `Update`, checked by the ServerApp), which only an externally owned account can do. When the chain
    cannot be asked, nothing is raised and the caller's bad-signature refusal applies.
    """
    try:
        is_contract = chain.has_code(participant)
    except chain.ChainError:
        return
    if is_contract:
        raise JoinRefused(
            "contract_wallet",
            f"{participant} is a smart-contract wallet. Training needs an ordinary (externally owned) account: "
            "the training client signs every model update with the wallet's key, round after round, which a "
            "contract wallet cannot do. Join with an ordinary account; a contract wallet can still create "
            "tasks, buy models and hold stakes.",
        )


def _join_verify(
    *, task: Task, user, participant: str, node_public_key: str, data_summary: dict, signature: str
) -> _SignedJoin:
    """Step 1: the task recruits, the signed-in wallet signed this exact Join."""
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
    message = join_message(
        task=task, participant=participant, node_public_key=node_public_key, data_summary=data_summary
    )
    try:
        signer = eip712.recover_signer(message, signature or "")
    except eip712.SignatureError as exc:
        _refuse_contract_wallet(participant)
        raise JoinRefused("bad_signature", f"The join signature is invalid: {exc}") from exc
    if signer != participant:
        _refuse_contract_wallet(participant)
        raise JoinRefused(
            "bad_signature",
            f"The join signature was made by {signer}, not by {participant}, or over different data "
            "(task id, node key and data summary must be exactly those sent).",
        )
    return _SignedJoin(participant, node_public_key, data_summary, signature, message)


def _join_check_person(*, task: Task, identity: Identity) -> None:
    """Step 2: the person (all their wallets) is not banned and has a credential if the task asks for one."""
    ban = identity_active_ban(identity=identity)
    if ban is not None:
        until = f"until {ban.expires_at:%Y-%m-%d %H:%M} UTC" if ban.expires_at else "permanently"
        raise JoinRefused("banned", f"Your identity is banned {until}: {ban.reason}", ban=ban)
    expired = identity.credential_expires_at is not None and identity.credential_expires_at <= timezone.now()
    if task.requires_credential and (identity.kind != Identity.Kind.NULLIFIER or expired):
        raise JoinRefused(
            "credential_required",
            "This task only accepts wallets with a valid uniqueness credential from a trusted issuer; "
            "link one on your identity page first.",
        )


def _join_check_place(*, task: Task, identity: Identity, join: _SignedJoin, problems: list[str]) -> None:
    """Step 3, under the task's lock: still recruiting, not joined yet (any wallet of the person), a free place,
    and the data fits the spec."""
    if task.status != S.RECRUITING:
        raise JoinRefused("not_recruiting", "This task stopped recruiting.")
    person = identity_group_ids(identity=identity)
    if task_participation_of_person(task=task, wallet=join.participant, identity_ids=person) is not None:
        raise JoinRefused(
            "already_joined", "You (this wallet or another wallet of yours) already joined this task."
        )
    if task_counted_participations(task=task) >= task.max_participants:
        raise JoinRefused("full", f"This task is full ({task.max_participants} participants).")
    if problems:
        raise JoinRefused(
            "spec_mismatch", "Your data does not fit the task's data spec: " + " ".join(problems)
        )


def participation_join(
    *, task: Task, user, participant: str, node_public_key: str, data_summary: dict, signature: str
) -> Participation:
    """Join `task` with a signed EIP-712 Join; refused with a `JoinRefused(code, message)` otherwise.

    Checks, in order: task recruiting, signature (by `participant`, the signed-in wallet), bans of the person
    (all their wallets), credential, already joined (same wallet or same person), full, data spec. Locks the
    task row; sends `participation_joined` before the commit (training registers the node key after it).
    """
    join = _join_verify(
        task=task,
        user=user,
        participant=participant,
        node_public_key=node_public_key,
        data_summary=data_summary,
        signature=signature,
    )
    identity = identity_for_wallet(address=join.participant)
    _join_check_person(task=task, identity=identity)
    problems = check_summary_against_spec(summary=data_summary, task=task)
    with transaction.atomic():
        locked = task_lock(task_id=task.pk)
        _join_check_place(task=locked, identity=identity, join=join, problems=problems)
        participation = Participation(
            task=locked,
            user=user,
            wallet=join.participant,
            identity=identity,
            node_public_key=join.node_public_key,
            node_public_key_hash=join.message["message"]["nodePublicKeyHash"],
            data_summary=data_summary,
            data_summary_hash=join.message["message"]["dataSummaryHash"],
            join_signature=signature,
        )
        participation.full_clean()
        participation.save()
        signals.participation_joined.send(sender=Participation, participation=participation)
    return participation
