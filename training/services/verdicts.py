"""Verdicts and stake shares at the end of training (a finalization step, idempotent).

A participant is judged **malicious** when, in at least ``TRAINING_VERDICT_ROUND_SHARE`` (env ``TRAINING_VERDICT_ROUND_PERCENT``, 50) of the rounds it
answered (and in at least ``min(2, rounds)`` rounds), its update was rejected as invalid (not for a missed
reply) or raised a detection signal that counts (``training.defence.detect``: norm outlier, copy of the
global model, a contribution below −0.35 × the round's starting validation loss, opposed to the round's
median update with a negative contribution; see
``training.defence.judge_rounds``, which the benchmarks run too). What an aggregation rule left out of one
round's aggregate is not evidence. A malicious participant gets no stake and is banned by
identity (all its wallets, every task) through ``tasks.services.ban_create``, with the evidence (per-round
signals, values, thresholds, update hashes) stored and its hash on chain. Then every participant's share
in basis points: ``training.contribution.shares_bps`` of the cumulative contributions.
"""

from __future__ import annotations

from django.db import transaction

from tasks.models import Ban, Task
from training import defence
from training.contribution import shares_bps
from training.models import Contribution, FinalModel, Update
from training.services import common

NO_REPLY = defence.NO_REPLY


def verdict_share() -> float:
    return float(common.setting("TRAINING_VERDICT_ROUND_SHARE", defence.VERDICT_ROUND_SHARE))


def judge(*, contribution: Contribution, rounds: int) -> tuple[bool, dict]:
    """``(malicious, evidence)`` of one participant from its update records (``training.defence.judge_rounds``)."""
    updates = Update.objects.filter(
        participation=contribution.participation, round__number__lte=rounds
    ).select_related("round")
    records = [
        {
            "round": u.round.number,
            "update_sha256": u.update_sha256,
            "accepted": u.accepted,
            "reason": u.reason,
            "flags": u.flags,
        }
        for u in updates
    ]
    malicious, evidence = defence.judge_rounds(records, rounds=rounds, share=verdict_share())
    return malicious, {"wallet": contribution.wallet, **evidence}


def verdicts_and_shares(*, task: Task, rounds: int | None = None) -> None:
    """Judge every participant over rounds 1..`rounds` (all by default), ban the malicious (once), and store
    each one's share of the stake."""
    contributions = list(Contribution.objects.filter(task=task).select_related("participation__identity"))
    for c in contributions:
        malicious, evidence = judge(contribution=c, rounds=int(task.rounds if rounds is None else rounds))
        with transaction.atomic():
            c.malicious, c.evidence, c.flagged_rounds = malicious, evidence, evidence["rounds_flagged"]
            c.save(update_fields=["malicious", "evidence", "flagged_rounds"])
            if malicious:
                _ban(task=task, contribution=c, evidence=evidence)
    creator = task.creator.username
    shares = task_shares(task=task, contributions=contributions)
    for c in contributions:
        Contribution.objects.filter(pk=c.pk).update(share_bps=shares.get(c.wallet, 0))
    final = FinalModel.objects.filter(task=task).first()
    if final is not None:
        final.metrics = {**(final.metrics or {}), "stakes_bps": shares, "creator": creator}
        final.save(update_fields=["metrics"])


def task_shares(*, task: Task, contributions: list[Contribution] | None = None) -> dict[str, int]:
    """{wallet: basis points} of the model's 10,000 shares: the creator's share, then the participants' by
    cumulative non-negative contribution; the malicious get 0 (`training.contribution.shares_bps`)."""
    if contributions is None:
        contributions = list(Contribution.objects.filter(task=task))
    return shares_bps(
        {c.wallet: c.cumulative for c in contributions},
        creator=task.creator.username,
        creator_share_bps=int(task.creator_share_bps),
        excluded={c.wallet for c in contributions if c.malicious},
    )


def _decisive(evidence: dict) -> str:
    n = int(evidence.get("rounds_decisive") or 0)
    return f", {n} of them with a decisive signal" if n else ""


def _ban(*, task: Task, contribution: Contribution, evidence: dict) -> None:
    from tasks.selectors import identity_root
    from tasks.services import ban_create

    identity = identity_root(identity=contribution.participation.identity)
    if Ban.objects.filter(identity=identity, task=task, lifted_at__isnull=True).exists():
        return  # judged before (this step ran already)
    signals = sorted({s["signal"] for e in evidence["rounds"] for s in e.get("signals", [])})
    rejected = sum(1 for e in evidence["rounds"] if "rejected" in e)
    what = ", ".join(signals + ([f"{rejected} invalid update(s)"] if rejected else []))
    ban_create(
        identity=identity,
        task=task,
        reason=(
            f"Judged malicious in task {task.pk}: flagged in {evidence['rounds_flagged']} of "
            f"{evidence['rounds_answered']} rounds{_decisive(evidence)} ({what})."
        ),
        evidence=evidence,
        expires_at=None,
    )
