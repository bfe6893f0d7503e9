"""Round ingestion: the ServerApp's round lines -> `Round` + `Update` rows, Merkle root, commitRound.

The ServerApp runs in Flower's process and writes one JSON line per round (records file); the follower
ingests each new line: rows, the Merkle root of the update leaves (`training.trail`, over `bcfl_core.merkle`)
and the ledger row of its `commitRound` in one DB transaction, so a round is either ingested and
commit-enqueued or neither. The ledger key `commit-round:<task>:<round>` makes a second commit of the same
round impossible.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from tasks.models import Participation, Task
from training.lock_objects import run_lock
from training.models import Round, Run, Update
from training.selectors import last_round_number, task_node_map
from training.services.common import TrainingError
from training.trail import ZERO_HASH, round_leaves, round_root, score_uint


def read_records(*, path: str | Path) -> list[dict]:
    """Complete JSON lines of a records file; a trailing line without newline (writer died) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # the last element is "" or an incomplete line
    return [json.loads(line) for line in lines if line.strip()]


def commit_key(*, task: Task, number: int) -> str:
    """The ledger idempotency key of round `number`'s commitRound."""
    return f"commit-round:{task.pk}:{number}"


def _new_round(run: Run, line: dict) -> Round:
    return Round.objects.create(
        task=run.task,
        run=run,
        number=int(line["round"]),
        global_sha256=str(line["global_sha256"]),
        checkpoint_path=str(line.get("checkpoint") or ""),
        checkpoint_sha256=str(line.get("checkpoint_sha256") or ""),
        accuracy=line.get("accuracy"),
        loss=line.get("loss"),
        aggregation_rule=str(line.get("aggregation_rule") or ""),
        updates_root=ZERO_HASH,
        record=line,
    )


def _update_rows(rnd: Round, records: list[dict], nodes: dict[int, Participation]) -> list[Update]:
    """Unsaved Update rows, one per node (the first record of a node counts; the full line stays in
    `rnd.record`). The wallet comes from the platform's own node map, never from the record."""
    updates: list[Update] = []
    seen: set[int] = set()
    for u in records:
        node_id = int(u["node_id"])
        if node_id in seen:
            continue
        seen.add(node_id)
        participation = nodes.get(node_id)
        accepted = bool(u["accepted"]) and participation is not None
        score = float(u.get("score") or 0.0) if accepted else 0.0
        updates.append(
            Update(
                round=rnd,
                node_id=str(node_id),
                participation=participation,
                wallet=participation.wallet if participation is not None else "",
                update_sha256=str(u.get("sha256") or ""),
                signature=str(u.get("signature") or ""),
                num_examples=int(u.get("num_examples") or 0),
                norm=u.get("norm"),
                accepted=accepted,
                reason=str(u.get("reason") or ("unknown node" if participation is None else "")),
                score=score,
                score_uint=score_uint(score),
                excluded=str(u.get("excluded") or "") if accepted else "",
                flags=list(u.get("flags") or []) if accepted else [],
            )
        )
    return updates


def _store_leaves(rnd: Round, updates: list[Update]) -> None:
    for index, (u, leaf) in enumerate(round_leaves(updates)):
        u.leaf_index, u.leaf = index, "0x" + leaf.hex()
    Update.objects.bulk_create(updates)
    rnd.updates_root = round_root(updates)
    rnd.accepted_count = sum(1 for u in updates if u.accepted)
    rnd.rejected_count = len(updates) - rnd.accepted_count


def _enqueue_commit(rnd: Round) -> None:
    from contracts.services import chain_tx_enqueue

    task = rnd.task
    rnd.commit_tx = chain_tx_enqueue(
        key=commit_key(task=task, number=rnd.number),
        contract_name="TaskRegistry",
        function="commitRound",
        args=[
            int(task.chain_task_id),
            rnd.number,
            "0x" + rnd.global_sha256,
            rnd.updates_root,
            rnd.accepted_count,
        ],
        task_ref=str(task.pk),
    )


def round_ingest(*, run: Run, line: dict) -> Round | None:
    """Store one recorded round (Round + Update rows), its Merkle root, and enqueue its commitRound.

    Idempotent: a round already stored returns None and enqueues nothing new. Rounds are taken strictly in
    order (the contract accepts only lastRound + 1): a line that is not the next round raises TrainingError.
    """
    task = run.task
    number = int(line["round"])
    with transaction.atomic():
        run_lock(run_id=run.pk)
        if Round.objects.filter(task=task, number=number).exists():
            return None
        last = last_round_number(task=task)
        if number != last + 1:
            raise TrainingError(f"round {number} recorded by run {run.pk}, but the next round is {last + 1}")
        rnd = _new_round(run, line)
        _store_leaves(rnd, _update_rows(rnd, line.get("updates", []), task_node_map(task=task)))
        _enqueue_commit(rnd)
        rnd.save(update_fields=["updates_root", "accepted_count", "rejected_count", "commit_tx"])
    return rnd


def run_ingest(*, run: Run) -> list[Round]:
    """Ingest every complete, not yet stored round line of the run's records file; returns the new rounds."""
    path = (run.run_config or {}).get("records-path")
    if not path:
        return []
    stored = set(Round.objects.filter(task_id=run.task_id).values_list("number", flat=True))
    new = []
    for line in read_records(path=path):
        number = int(line["round"])
        if number <= run.resume_from_round or number in stored:
            continue
        rnd = round_ingest(run=run, line=line)
        if rnd is not None:
            new.append(rnd)
            stored.add(number)
    return new
