"""Read side of training: nodes, rounds, scores, participant states, progress and proofs (the task page's words
and chart are in :mod:`training.task_page`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.models import Participation, Task
from training.models import Contribution, NodeRegistration, Round, Run, Update

COUNTED = (Participation.Status.JOINED, Participation.Status.ACTIVE, Participation.Status.COMPLETED)


def task_node_map(*, task: Task) -> dict[int, Participation]:
    """node id -> participation, for the task's participations whose key is registered to their wallet."""
    parts = {p.node_public_key_hash: p for p in task.participations.filter(status__in=COUNTED)}
    regs = NodeRegistration.objects.filter(
        public_key_hash__in=list(parts), status=NodeRegistration.Status.REGISTERED, node_id__isnull=False
    )
    return {
        int(r.node_id): parts[r.public_key_hash]
        for r in regs
        if r.wallet.lower() == parts[r.public_key_hash].wallet.lower()
    }


def last_round_number(*, task: Task) -> int:
    """The highest stored round number of the task (0 before the first round)."""
    return Round.objects.filter(task=task).order_by("-number").values_list("number", flat=True).first() or 0


def latest_run(*, task: Task) -> Run | None:
    return Run.objects.filter(task=task).order_by("-attempt").first()


def round_metrics(*, task: Task) -> list[dict]:
    """Per stored round: {"round", "accuracy", "loss", "accepted", "rejected", "global_sha256"}, in order."""
    rows = Round.objects.filter(task=task).order_by("number")
    return [
        {
            "round": r.number,
            "accuracy": r.accuracy,
            "loss": r.loss,
            "accepted": r.accepted_count,
            "rejected": r.rejected_count,
            "global_sha256": r.global_sha256,
        }
        for r in rows
    ]


def participant_round_scores(*, task: Task) -> dict[int, dict[int, tuple[float, bool]]]:
    """participation id -> {round number: (score, accepted)} from the stored update records.

    Updates of unknown nodes (no participation) are left out; rejected updates carry score 0.
    """
    out: dict[int, dict[int, tuple[float, bool]]] = {}
    rows = Update.objects.filter(round__task=task, participation__isnull=False).values_list(
        "participation_id", "round__number", "score", "accepted"
    )
    for pid, number, score, accepted in rows:
        out.setdefault(pid, {})[number] = (float(score) if accepted else 0.0, bool(accepted))
    return out


def task_rounds(*, task: Task) -> list[Round]:
    return list(Round.objects.filter(task=task).select_related("commit_tx").order_by("number"))


def round_summary(rnd: Round) -> dict:
    tx = rnd.commit_tx
    return {
        "round": rnd.number,
        "accuracy": rnd.accuracy,
        "loss": rnd.loss,
        "accepted": rnd.accepted_count,
        "rejected": rnd.rejected_count,
        "global_model_hash": "0x" + rnd.global_sha256,
        "updates_root": rnd.updates_root,
        "checkpoint_sha256": rnd.checkpoint_sha256,
        "commit_status": tx.status if tx else "",
        "commit_tx_hash": tx.tx_hash if tx else "",
        "commit_block": tx.block_number if tx else None,
    }


@dataclass
class ParticipantState:
    participation: Participation
    registration: NodeRegistration | None
    accepted: int = 0
    rejected: int = 0
    last_reason: str = ""
    reasons: list[str] = field(default_factory=list)
    excluded: int = 0
    contribution: float = 0.0
    flagged_rounds: list[int] = field(default_factory=list)
    last_flags: list[dict] = field(default_factory=list)
    share_bps: int | None = None
    malicious: bool = False

    @property
    def node_registered(self) -> bool:
        return bool(
            self.registration
            and self.registration.status == NodeRegistration.Status.REGISTERED
            and self.registration.wallet.lower() == self.participation.wallet.lower()
        )

    @property
    def node_id(self) -> int | None:
        return int(self.registration.node_id) if self.node_registered else None

    @property
    def state(self) -> str:
        if self.rejected and not self.accepted:
            return "rejected"
        if self.accepted:
            return "updates accepted"
        if self.node_registered:
            return "node registered"
        if self.registration and self.registration.wallet.lower() != self.participation.wallet.lower():
            return "node key belongs to another wallet"
        if self.registration and self.registration.status == NodeRegistration.Status.FAILED:
            return "node registration failed"
        return "joined"

    def as_dict(self) -> dict:
        reg = self.registration
        return {
            "wallet": self.participation.wallet,
            "state": self.state,
            "node_registered": self.node_registered,
            "node_id": str(self.node_id) if self.node_id is not None else None,  # u64: exact as text
            "node_status": reg.status if reg else "",
            "node_error": reg.error if reg else "",
            "updates_accepted": self.accepted,
            "updates_rejected": self.rejected,
            "last_rejection_reason": self.last_reason,
            "updates_excluded": self.excluded,
            "contribution": self.contribution,
            "flagged_rounds": self.flagged_rounds,
            "last_flags": self.last_flags,
            "share_bps": self.share_bps,
            "malicious": self.malicious,
        }


def participant_states(*, task: Task) -> list[ParticipantState]:
    parts = list(task.participations.select_related("identity").order_by("joined_at", "pk"))
    regs = {
        r.public_key_hash: r
        for r in NodeRegistration.objects.filter(public_key_hash__in=[p.node_public_key_hash for p in parts])
    }
    states = {p.pk: ParticipantState(p, regs.get(p.node_public_key_hash)) for p in parts}
    rows = (
        Update.objects.filter(round__task=task, participation__isnull=False)
        .order_by("round__number")
        .values_list("participation_id", "accepted", "reason", "excluded", "score", "flags", "round__number")
    )
    for pid, accepted, reason, excluded, score, flags, number in rows:
        st = states.get(pid)
        if st is None:
            continue
        _count_update(st, accepted=accepted, reason=reason, excluded=excluded, score=score)
        counted = [f for f in flags or [] if f.get("counts")]
        if counted:
            st.flagged_rounds.append(number)
            st.last_flags = counted
    for pid, share, malicious in Contribution.objects.filter(task=task).values_list(
        "participation_id", "share_bps", "malicious"
    ):
        if pid in states:
            states[pid].share_bps, states[pid].malicious = share, malicious
    return list(states.values())


def _count_update(st: ParticipantState, *, accepted: bool, reason: str, excluded: str, score: float) -> None:
    if accepted:
        st.accepted += 1
        st.excluded += bool(excluded)
        st.contribution += float(score or 0.0)
    else:
        st.rejected += 1
        st.last_reason = reason


def registration_of(*, participation: Participation) -> NodeRegistration | None:
    return NodeRegistration.objects.filter(public_key_hash=participation.node_public_key_hash).first()


def task_training_progress(*, task: Task) -> dict:
    rounds = task_rounds(task=task)
    run = Run.objects.filter(task=task).order_by("-attempt").first()
    committed = sum(1 for r in rounds if r.commit_tx and r.commit_tx.status == "confirmed")
    return {
        "rounds_total": task.rounds,
        "rounds_done": len(rounds),
        "rounds_committed": committed,
        "run": {
            "attempt": run.attempt,
            "status": run.status,
            "flower_run_id": str(run.flower_run_id) if run.flower_run_id is not None else None,
            "resumed_from_round": run.resume_from_round,
            "error": run.error,
        }
        if run
        else None,
        "rounds": [round_summary(r) for r in rounds],
        "participants": [s.as_dict() for s in participant_states(task=task)],
    }


def round_proof(*, task: Task, number: int, wallet: str) -> dict | None:
    """Leaf, proof and root of `wallet`'s update in round `number` (None if it has no leaf there), with the round's
    committed fields: `TaskRegistry.verifyUpdate(taskId, round, global_model_hash, root, accepted_count,
    participant, update_hash, score, accepted, proof)` checks them against the round's stored hash."""
    from bcfl_core import merkle
    from training.trail import round_leaves

    rnd = Round.objects.filter(task=task, number=number).first()
    if rnd is None:
        return None
    updates = list(rnd.updates.all())
    leaves = round_leaves(updates)
    for index, (u, leaf) in enumerate(leaves):
        if u.wallet.lower() == wallet.lower():
            proof = merkle.merkle_proof([lf for _, lf in leaves], index)
            return {
                "round": rnd.number,
                "participant": u.wallet,
                "update_hash": "0x" + u.update_sha256 if u.update_sha256 else "0x" + "00" * 32,
                "score": str(int(u.score_uint)),
                "accepted": u.accepted,
                "reason": u.reason,
                "signature": u.signature,
                "leaf": "0x" + leaf.hex(),
                "proof": ["0x" + p.hex() for p in proof],
                "root": rnd.updates_root,
                "global_model_hash": "0x" + rnd.global_sha256,
                "accepted_count": rnd.accepted_count,
                "commit_tx_hash": rnd.commit_tx.tx_hash if rnd.commit_tx else "",
            }
    return None
