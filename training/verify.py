"""Audit a task's training trail: stored records -> Merkle roots and checkpoints -> RoundCommitted on chain.

Read-only. Used by `manage.py verify_task`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bcfl_core import eip712
from tasks.models import Task
from training.models import Round


@dataclass
class VerifyResult:
    ok: bool = True
    lines: list[str] = field(default_factory=list)
    mismatch: str = ""

    def fail(self, text: str) -> VerifyResult:
        if self.ok:
            self.ok, self.mismatch = False, text
        self.lines.append("MISMATCH " + text)
        return self


def chain_round_events(task: Task, source: str = "chain") -> dict[int, dict]:
    """RoundCommitted args by round for the task: from the chain's logs, or from indexed ChainEvent rows."""
    from contracts.models import ChainEvent

    if source == "chain":
        from contracts import chain
        from contracts.models import Deployment

        dep = Deployment.objects.filter(chain_id=task.chain_id, name="TaskRegistry").first()
        start = int(dep.block_number or 0) if dep else 0
        events = chain.get_logs(start, chain.block_number(), chain_id=task.chain_id)
    else:
        events = [
            {"event": e.event, "contract_name": e.contract_name, "args": e.args}
            for e in ChainEvent.objects.filter(chain_id=task.chain_id, event="RoundCommitted")
        ]
    out: dict[int, dict] = {}
    for e in events:
        if e["event"] == "RoundCommitted" and int(e["args"]["taskId"]) == int(task.chain_task_id):
            out.setdefault(int(e["args"]["round"]), e["args"])
    return out


def verify_task(task: Task, *, source: str = "chain", check_signatures: bool = True) -> VerifyResult:
    from training.flower_app.server_app import load_checkpoint, sha256_file
    from training.services import round_root, update_leaf

    result = VerifyResult()
    rounds = list(
        Round.objects.filter(task=task).order_by("number").select_related("run").prefetch_related("updates")
    )
    if task.chain_task_id is None:
        return result.fail("the task is not registered on chain")
    events = chain_round_events(task, source)
    numbers = [r.number for r in rounds]
    if numbers != list(range(1, len(rounds) + 1)):
        return result.fail(f"stored rounds are not 1..n: {numbers}")
    extra = sorted(set(events) - set(numbers))
    if extra:
        return result.fail(f"round(s) {extra} committed on chain but not stored")
    keys = None
    for rnd in rounds:
        updates = list(rnd.updates.all())
        for u in updates:
            leaf = update_leaf(u)
            if (leaf is None and u.leaf) or (leaf is not None and "0x" + leaf.hex() != u.leaf):
                result.fail(f"round {rnd.number}: stored leaf of node {u.node_id} does not match its record")
                return result
            if check_signatures and u.accepted:
                message = eip712.update_typed_data(
                    chain_id=task.chain_id, verifying_contract=_registry(task), task_id=task.chain_task_id,
                    round=rnd.number, update_hash="0x" + u.update_sha256,
                )  # fmt: skip
                try:
                    signer = eip712.recover_signer(message, u.signature)
                except eip712.SignatureError:
                    signer = ""
                if signer.lower() != u.wallet.lower():
                    return result.fail(
                        f"round {rnd.number}: accepted update of {u.wallet} is not signed by it"
                    )
        root = round_root(updates)
        if root != rnd.updates_root:
            return result.fail(f"round {rnd.number}: recomputed root {root} != stored {rnd.updates_root}")
        accepted = sum(1 for u in updates if u.accepted)
        if rnd.checkpoint_path:
            path = Path(rnd.checkpoint_path)
            if not path.exists():
                return result.fail(f"round {rnd.number}: checkpoint {path} is missing")
            if sha256_file(path) != rnd.checkpoint_sha256:
                return result.fail(f"round {rnd.number}: checkpoint file sha256 differs from the record")
            if keys is None:
                from safetensors import safe_open

                with safe_open(str(path), "numpy") as f:
                    keys = _state_order(rnd, list(f.keys()))
            from training import zoo

            if zoo.weights_hash(load_checkpoint(path, keys)) != rnd.global_sha256:
                return result.fail(
                    f"round {rnd.number}: checkpoint weights hash differs from the global model hash"
                )
        event = events.get(rnd.number)
        if event is None:
            return result.fail(f"round {rnd.number}: no RoundCommitted event on chain")
        if str(event["updatesRoot"]).lower() != root.lower():
            return result.fail(f"round {rnd.number}: chain root {event['updatesRoot']} != recomputed {root}")
        if str(event["globalModelHash"]).lower() != "0x" + rnd.global_sha256:
            return result.fail(f"round {rnd.number}: chain global model hash differs")
        if int(event["acceptedCount"]) != accepted:
            return result.fail(
                f"round {rnd.number}: chain accepted count {event['acceptedCount']} != {accepted}"
            )
        result.lines.append(
            f"round {rnd.number}: OK root {root} ({accepted} accepted, {len(updates)} updates)"
        )
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
