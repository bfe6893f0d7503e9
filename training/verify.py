"""Audit a task's training trail: stored records -> Merkle roots and checkpoints -> RoundCommitted on chain.

Read-only, used by `manage.py verify_task`. Recomputes everything from the stored rows, the checkpoint files,
`training.trail` (leaves, roots, checkpoint hashing over `bcfl_core.merkle`) and the chain's events; it
never imports the ServerApp or `training.services`, so it checks the platform rather than trusting it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from bcfl_core import eip712
from tasks.models import Task
from training.models import FinalModel, Round, Update
from training.trail import checkpoint_keys, load_checkpoint, round_root, sha256_file, update_leaf


@dataclass
class VerifyResult:
    """ok: no mismatch; lines: one per verified round (and MISMATCH lines); mismatch: the first mismatch."""

    ok: bool = True
    lines: list[str] = field(default_factory=list)
    mismatch: str = ""
    final_model: str = ""  # "OK sha256 …" when a saved final model was checked against the last checkpoint
    stakes: list[str] = field(
        default_factory=list
    )  # settlement, stakes and revenue lines (training.verify_stakes)

    def fail(self, text: str) -> VerifyResult:
        if self.ok:
            self.ok, self.mismatch = False, text
        self.lines.append("MISMATCH " + text)
        return self


def chain_events(task: Task, source: str = "chain") -> list[dict]:
    """Every event of the platform's contracts on the task's chain: from the chain's logs, or from the
    indexed ChainEvent rows (`source="index"`)."""
    from contracts.models import ChainEvent

    if source == "chain":
        from contracts import chain
        from contracts.models import Deployment

        dep = Deployment.objects.filter(chain_id=task.chain_id, name="TaskRegistry").first()
        start = int(dep.block_number or 0) if dep else 0
        return chain.get_logs(start, chain.block_number(), chain_id=task.chain_id)
    return [
        {"event": e.event, "contract_name": e.contract_name, "args": e.args}
        for e in ChainEvent.objects.filter(chain_id=task.chain_id).order_by("block_number", "log_index")
    ]


def chain_round_events(
    task: Task, source: str = "chain", events: list[dict] | None = None
) -> dict[int, dict]:
    """RoundCommitted args by round for the task (from `events`, else `chain_events(task, source)`)."""
    events = chain_events(task, source) if events is None else events
    out: dict[int, dict] = {}
    for e in events:
        if e["event"] == "RoundCommitted" and int(e["args"]["taskId"]) == int(task.chain_task_id):
            out.setdefault(int(e["args"]["round"]), e["args"])
    return out


def _check_updates(task: Task, rnd: Round, updates: list[Update], check_signatures: bool) -> str:
    """The first problem with the round's update records (leaf, signature), or ""."""
    for u in updates:
        leaf = update_leaf(u)
        if (leaf is None and u.leaf) or (leaf is not None and "0x" + leaf.hex() != u.leaf):
            return f"round {rnd.number}: stored leaf of node {u.node_id} does not match its record"
        if check_signatures and u.accepted:
            message = eip712.update_typed_data(
                chain_id=task.chain_id,
                verifying_contract=_registry(task),
                task_id=task.chain_task_id,
                round=rnd.number,
                update_hash="0x" + u.update_sha256,
            )
            try:
                signer = eip712.recover_signer(message, u.signature)
            except eip712.SignatureError:
                signer = ""
            if signer.lower() != u.wallet.lower():
                return f"round {rnd.number}: accepted update of {u.wallet} is not signed by it"
    return ""


def _check_checkpoint(rnd: Round, keys: list[str] | None) -> tuple[str, list[str] | None]:
    """(first problem with the round's checkpoint file or "", the model's key order for the next rounds)."""
    if not rnd.checkpoint_path:
        return "", keys
    from training import zoo

    path = Path(rnd.checkpoint_path)
    if not path.exists():
        return f"round {rnd.number}: checkpoint {path} is missing", keys
    if sha256_file(path) != rnd.checkpoint_sha256:
        return f"round {rnd.number}: checkpoint file sha256 differs from the record", keys
    keys = keys or _state_order(rnd, checkpoint_keys(path))
    if zoo.weights_hash(load_checkpoint(path, keys)) != rnd.global_sha256:
        return f"round {rnd.number}: checkpoint weights hash differs from the global model hash", keys
    return "", keys


def _check_event(rnd: Round, event: dict | None, root: str, accepted: int) -> str:
    """The first difference between the round's recomputed values and its RoundCommitted event, or ""."""
    if event is None:
        return f"round {rnd.number}: no RoundCommitted event on chain"
    if str(event["updatesRoot"]).lower() != root.lower():
        return f"round {rnd.number}: chain root {event['updatesRoot']} != recomputed {root}"
    if str(event["globalModelHash"]).lower() != "0x" + rnd.global_sha256:
        return f"round {rnd.number}: chain global model hash differs"
    if int(event["acceptedCount"]) != accepted:
        return f"round {rnd.number}: chain accepted count {event['acceptedCount']} != {accepted}"
    return ""


def _check_final_model(task: Task, rounds: list[Round]) -> str:
    """The final model (if saved) is the last round's checkpoint, byte for byte; else the problem."""
    final = FinalModel.objects.filter(task=task).select_related("source_round").first()
    if final is None:
        return ""
    if (
        not rounds
        or final.source_round_id != rounds[-1].pk
        or final.weights_sha256 != rounds[-1].global_sha256
    ):
        return "final model is not the last round's global model"
    h = hashlib.sha256()
    with final.file.open("rb") as f:
        for chunk in f.chunks():
            h.update(chunk)
    digest = h.hexdigest()
    if digest != final.sha256 or (rounds[-1].checkpoint_sha256 and digest != rounds[-1].checkpoint_sha256):
        return "final model file sha256 differs from its record or from the last round's checkpoint"
    return ""


def verify_task(task: Task, *, source: str = "chain", check_signatures: bool = True) -> VerifyResult:
    """Recompute the task's round roots, leaves, signatures and checkpoint hashes and compare them with the
    RoundCommitted events (`source`: "chain" logs or the "index" table). Stops at the first mismatch."""
    result = VerifyResult()
    rounds = list(
        Round.objects.filter(task=task).order_by("number").select_related("run").prefetch_related("updates")
    )
    if task.chain_task_id is None:
        return result.fail("the task is not registered on chain")
    all_events = chain_events(task, source)
    events = chain_round_events(task, source, all_events)
    numbers = [r.number for r in rounds]
    if numbers != list(range(1, len(rounds) + 1)):
        return result.fail(f"stored rounds are not 1..n: {numbers}")
    extra = sorted(set(events) - set(numbers))
    if extra:
        return result.fail(f"round(s) {extra} committed on chain but not stored")
    keys = None
    for rnd in rounds:
        updates = list(rnd.updates.all())
        root = round_root(updates)
        accepted = sum(1 for u in updates if u.accepted)
        problem = _check_updates(task, rnd, updates, check_signatures)
        if not problem and root != rnd.updates_root:
            problem = f"round {rnd.number}: recomputed root {root} != stored {rnd.updates_root}"
        if not problem:
            problem, keys = _check_checkpoint(rnd, keys)
        problem = problem or _check_event(rnd, events.get(rnd.number), root, accepted)
        if problem:
            return result.fail(problem)
        result.lines.append(
            f"round {rnd.number}: OK root {root} ({accepted} accepted, {len(updates)} updates)"
        )
    problem = _check_final_model(task, rounds)
    if problem:
        return result.fail(problem)
    final = FinalModel.objects.filter(task=task).only("sha256").first()
    if final is not None:
        result.final_model = f"OK sha256 {final.sha256} (the last round's checkpoint, byte for byte)"
    from training.verify_stakes import verify_stakes

    problem, lines = verify_stakes(task, all_events)
    if problem:
        return result.fail(problem)
    result.stakes = lines
    return result


def _registry(task: Task) -> str:
    from contracts import chain

    return chain.deployment_address("TaskRegistry", task.chain_id)


def _state_order(rnd: Round, file_keys: list[str]) -> list[str]:
    """The model's state_dict order (weights_hash is order-sensitive; safetensors sorts keys)."""
    from training import zoo
    from training.flower_app import task as app_task

    try:
        order = zoo.state_keys(app_task.model_spec(rnd.run.run_config or {}).build())
        if set(order) == set(file_keys):
            return order
    except Exception:  # noqa: BLE001, S110 - fall back to the file's order
        pass
    return file_keys
