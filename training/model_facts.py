"""Everything public about a task's trained model, as the plain dict `training.model_card.model_card` and
`training.metadata` take (see `training.model_card` for its keys). A selector: reads only."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from contracts import chain
from contracts.models import ChainTx
from tasks.models import Task
from training.models import Contribution, Finalization, FinalModel, Round, StakeAllocation


def nft_mint_key(task: Task) -> str:
    """Ledger key of the model NFT's `ModelNFT.mint` (one per task and chain)."""
    return f"nft-mint:{task.chain_id}:{task.chain_task_id}"


def _address(name: str) -> str:
    try:
        return chain.deployment_address(name)
    except Exception:  # noqa: BLE001 - not deployed on this chain: the card says so
        return ""


def _rounds(task: Task) -> list[dict]:
    rows = Round.objects.filter(task=task).select_related("commit_tx").order_by("number")
    return [
        {
            "round": r.number,
            "accuracy": r.accuracy,
            "loss": r.loss,
            "accepted": r.accepted_count,
            "rejected": r.rejected_count,
            "global_sha256": r.global_sha256,
            "commit_tx_hash": r.commit_tx.tx_hash if r.commit_tx else "",
        }
        for r in rows
    ]


def _chain(task: Task, fin: Finalization | None) -> dict:
    mint = ChainTx.objects.filter(idempotency_key=nft_mint_key(task)).first()
    return {
        "chain_id": task.chain_id,
        "registry": _address("TaskRegistry"),
        "model_nft": _address("ModelNFT"),
        "stake_token": _address("StakeToken"),
        "create_tx_hash": task.create_tx_hash,
        "settle_tx_hash": fin.settled_tx_hash if fin else "",
        "mint_tx_hash": mint.tx_hash if mint else "",
        "stakes_root": fin.stakes_root if fin else "",
        "explorer": getattr(settings, "CHAIN_EXPLORER_URL", ""),
    }


def model_facts(*, task: Task) -> dict:
    """The facts dict of `task` (its final model may be missing: `final` is then empty)."""
    final = FinalModel.objects.filter(task=task).first()
    fin = Finalization.objects.filter(task=task).first()
    ds = task.validation_summary or {}
    return {
        "task": {
            "id": task.pk,
            "chain_task_id": task.chain_task_id,
            "title": task.title,
            "description": task.description,
            "creator": task.creator.username,
            "licence_terms": task.licence_terms,
            "spec_hash": task.spec_hash,
            "aggregation_rule": task.get_aggregation_rule_display(),
            "url": reverse("tasks:detail", args=[task.pk]),
        },
        "data": {"feature_shape": task.feature_shape, "labels": task.label_set, "dataset": ds.get("dataset")},
        "model": {
            "kind": task.model_kind,
            "hyperparameters": {
                "learning_rate": float(task.learning_rate),
                "local_epochs": task.local_epochs,
                "batch_size": task.batch_size,
            },
        },
        "rounds": _rounds(task),
        "final": {
            "accuracy": (final.metrics.get("final") or {}).get("accuracy"),
            "loss": (final.metrics.get("final") or {}).get("loss"),
            "sha256": final.sha256,
            "weights_sha256": final.weights_sha256,
        }
        if final
        else {},
        "participants": Contribution.objects.filter(task=task).count(),
        "stakes": list(StakeAllocation.objects.filter(task=task).values("holder", "shares")),
        "bans": [
            {"wallet": c.wallet, "reason": f"flagged in {c.flagged_rounds} round(s)"}
            for c in Contribution.objects.filter(task=task, malicious=True)
        ],
        "chain": _chain(task, fin),
    }
