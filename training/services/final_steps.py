"""The finalization steps (see `training.services.finalize.FINALIZE_STEPS`). Each is idempotent: running it
twice leaves the same rows and files as running it once. Each raises FinalizeError for a permanent problem
(the task fails with the message), OSError for I/O worth retrying.
"""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.db.models import Q

from tasks.models import Task
from tasks.storage import private_storage
from training.models import (
    Contribution,
    Finalization,
    FinalModel,
    Round,
    final_model_upload_to,
    model_card_upload_to,
)
from training.selectors import COUNTED, participant_round_scores, round_metrics
from training.trail import sha256_file


class FinalizeError(Exception):
    """A finalization step cannot succeed (retrying will not help); the message says why."""


def _final_round(task: Task) -> tuple[Round, Path, str]:
    """The last round, its checkpoint file and the file's sha256 (checked against the round's record)."""
    rnd = Round.objects.filter(task=task, number=task.rounds).first()
    if rnd is None:
        raise FinalizeError(f"round {task.rounds} (the last) is not stored")
    if not rnd.checkpoint_path:
        raise FinalizeError(f"round {rnd.number} has no checkpoint")
    path = Path(rnd.checkpoint_path)
    if not path.exists():
        raise FinalizeError(f"the checkpoint of round {rnd.number} ({path}) is missing")
    digest = sha256_file(path)
    if rnd.checkpoint_sha256 and digest != rnd.checkpoint_sha256:
        raise FinalizeError(f"the checkpoint of round {rnd.number} differs from its record (sha256 {digest})")
    return rnd, path, digest


def final_model_save(*, task: Task) -> None:
    """Copy the last round's checkpoint (safetensors) to private storage as the task's `FinalModel`, with its
    sha256, the committed global model hash and the metrics of every round."""
    rnd, path, digest = _final_round(task)
    storage = private_storage()
    existing = FinalModel.objects.filter(task=task).first()
    if existing and existing.sha256 == digest and existing.file and storage.exists(existing.file.name):
        return
    name = final_model_upload_to(FinalModel(task=task), path.name)
    if storage.exists(name):  # left by a delivery that died before its row was written
        storage.delete(name)
    with path.open("rb") as f:
        saved = storage.save(name, File(f))
    metrics = {"rounds": round_metrics(task=task)}
    metrics["final"] = {"accuracy": rnd.accuracy, "loss": rnd.loss, "round": rnd.number}
    FinalModel.objects.update_or_create(
        task=task,
        defaults={
            "source_round": rnd,
            "file": saved,
            "sha256": digest,
            "weights_sha256": rnd.global_sha256,
            "metrics": metrics,
        },
    )


def contributions_record(*, task: Task, rounds: int | None = None) -> None:
    """One `Contribution` per participant (every counted participation, and any with update records): its
    score in every round (the scorer's score of its accepted update, else 0) and their sum. `rounds`: count
    rounds 1..rounds only (a failed task's committed rounds); all of the task's rounds by default."""
    scores = participant_round_scores(task=task)
    parts = task.participations.filter(Q(pk__in=list(scores)) | Q(status__in=COUNTED)).order_by("pk")
    numbers = range(1, int(task.rounds if rounds is None else rounds) + 1)
    for p in parts:
        mine = scores.get(p.pk, {})
        per_round = {str(n): mine.get(n, (0.0, False))[0] for n in numbers}
        Contribution.objects.update_or_create(
            task=task,
            participation=p,
            defaults={
                "wallet": p.wallet,
                "per_round": per_round,
                "cumulative": sum(per_round.values()),
                "accepted_rounds": sum(1 for n in numbers if mine.get(n, (0.0, False))[1]),
            },
        )


def model_card_write(*, task: Task) -> None:
    """The model card (`training.model_card`, Hugging Face layout) next to the weights in private storage."""
    from django.core.files.base import ContentFile

    from training.model_card import model_card
    from training.model_facts import model_facts

    final = FinalModel.objects.filter(task=task).first()
    if final is None:
        raise FinalizeError("no final model was saved")
    text = model_card(model_facts(task=task)).encode()
    storage = private_storage()
    name = model_card_upload_to(final, "README.md")
    if storage.exists(name):
        storage.delete(name)
    final.card = storage.save(name, ContentFile(text))
    final.save(update_fields=["card"])


def task_complete(*, task: Task) -> None:
    """finalizing -> completed, with a note naming the final model and the contributions recorded."""
    from tasks.services import task_transition

    final = FinalModel.objects.filter(task=task).first()
    if final is None:
        raise FinalizeError("no final model was saved")
    count = Contribution.objects.filter(task=task).count()
    malicious = Contribution.objects.filter(task=task, malicious=True).count()
    banned = f"; {malicious} judged malicious and banned" if malicious else ""
    fin = Finalization.objects.filter(task=task).first()
    settled = (
        f" Model NFT #{task.chain_task_id} minted to the creator; the reward pool moved to the stake pool "
        f"(tx {fin.settled_tx_hash[:12]}…) under stakes root {fin.stakes_root[:12]}…."
        if fin and fin.settled_tx_hash
        else ""
    )
    from training.services import common

    common.enqueue(
        "final_model_export", task.pk
    )  # ONNX for buyers, after the commit (a job: seconds of work)
    task_transition(
        task=task,
        to=Task.Status.COMPLETED,
        note=f"Final model saved (sha256 {final.sha256[:16]}…); contributions of {count} participant(s) recorded"
        f"{banned}.{settled}",
    )
