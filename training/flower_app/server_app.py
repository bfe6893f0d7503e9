"""BCFL ServerApp: validated FedAvg with a per-round hook, central evaluation, safetensors output.

Every training reply is checked before it counts (shapes and dtypes match the global model,
all values finite, size limit); a bad reply is dropped with a reason and the round goes on.
Per round, a ``RoundHook`` sees every accepted and rejected update and the new global model:
the default hook appends one JSON line per round to ``records-path``.

Platform runs (``participants-path`` or ``participants`` set) add, per reply: the sender's node id must
be a task participant ("unknown node"), the reply must carry a ConfigRecord "bcfl" with "wallet",
"update-hash" and "signature" ("missing signature"), the hash must be ``weights_hash`` of the arrays
actually received ("update hash mismatch"), and the EIP-712 ``Update(taskId, round, updateHash)``
signature must recover to the wallet registered for that node ("bad signature"). Only participants'
nodes are sampled (the SuperLink is shared by every task). ``resume-from-round`` N with
``initial-checkpoint`` continues a crashed run at round N+1 from round N's checkpoint.
No Django in this process.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

if __package__:  # imported from the repository as training.flower_app.server_app
    from . import task
else:  # loaded by Flower from the unpacked app bundle
    import task  # type: ignore[no-redef]

from bcfl_core import eip712  # pure Python (eth_account), no Django
from training import contribution, defence, zoo

log = logging.getLogger("bcfl.serverapp")

# Run-config keys the platform adds (kept in step with [tool.flwr.app.config] in pyproject.toml).
PLATFORM_DEFAULTS: dict[str, Any] = {
    "chain-id": 0,
    "registry-address": "",
    "chain-task-id": 0,
    "participants": "",  # "node_id:0xWallet,..." or JSON {"node_id": "0xWallet"}
    "participants-path": "",  # JSON file {"node_id": "0xWallet"} (the platform uses this: no arg limits)
    "resume-from-round": 0,
    "initial-checkpoint": "",
    "initial-sha256": "",  # weights_hash the checkpoint must have
    "aggregation-rule": "fedavg",
    "scorer": "",  # a training.contribution.SCORERS name ("" = default) or "pkg.module:callable"
    "heartbeat-path": "",  # touched every few seconds while the ServerApp lives
    "error-path": "",  # why the run failed, in plain words, written before the ServerApp raises
}

REASON_UNKNOWN_NODE = "unknown node"
NO_REPLY = "no reply: "  # reason prefix of a sampled node that did not answer


class TooFewRepliesError(RuntimeError):
    """Fewer participants answered a round than the task needs: the round does not count."""


SUPERLINK_NODE_ID = 1  # flwr.common.constant.SUPERLINK_NODE_ID: the sender of replies the SuperLink makes up
REASON_MISSING_SIGNATURE = "missing signature"
REASON_HASH_MISMATCH = "update hash mismatch"
REASON_BAD_SIGNATURE = "bad signature"
BCFL_RECORD = "bcfl"


def rc_get(run_config: Mapping[str, Any], key: str) -> Any:
    """``task.cfg`` for the app's keys, the same coercion for the platform's keys."""
    if key in task.DEFAULTS:
        return task.cfg(run_config, key)
    default = PLATFORM_DEFAULTS[key]
    value = run_config.get(key, default)
    if isinstance(default, int):
        return int(value)
    return str(value)


# --- records and hook ---------------------------------------------------------------------------


@dataclass
class UpdateRecord:
    """One node's training reply in one round, as judged by the ServerApp."""

    node_id: int
    sha256: str | None
    num_examples: int
    norm: float | None  # L2 norm of (update - global model); None when unreadable
    accepted: bool
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    wallet: str = ""  # the participant's wallet registered for node_id ("" outside platform runs)
    signature: str = ""  # EIP-712 Update signature as sent
    score: float = 0.0  # contribution score of this round (0 for rejected updates)


@runtime_checkable
class RoundHook(Protocol):
    def on_round(
        self,
        server_round: int,
        accepted: Sequence[UpdateRecord],
        rejected: Sequence[UpdateRecord],
        global_arrays: Sequence[np.ndarray],
        metrics: dict[str, float],
    ) -> None:
        """Called once per round after aggregation and central evaluation.

        ``global_arrays``: the new global model (unchanged if nothing was accepted), in the
        model's ``state_dict`` key order. ``metrics``: central ``accuracy``/``loss`` and the
        aggregated client metrics.
        """


class NullRoundHook:
    def on_round(self, server_round, accepted, rejected, global_arrays, metrics) -> None:
        return None


class JsonlRoundHook:
    """Appends one JSON object per round to a file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_round(self, server_round, accepted, rejected, global_arrays, metrics, info=None) -> None:
        line = {
            "round": server_round,
            "global_sha256": zoo.weights_hash(global_arrays),
            "accuracy": metrics.get("accuracy"),
            "loss": metrics.get("loss"),
            "metrics": metrics,
            "updates": [asdict(u) for u in [*accepted, *rejected]],
            "time": time.time(),
            **(info or {}),
        }
        # One write of one complete line: a reader ignores a trailing line without its newline
        # (the process died mid-write), so a round is either fully recorded or not at all.
        with self.path.open("a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
            f.flush()


def hook_from_config(run_config) -> RoundHook:
    """``hook-factory = "pkg.module:callable"`` (called with the run config) or the JSONL hook."""
    factory = str(task.cfg(run_config, "hook-factory"))
    if factory:
        module, _, attr = factory.partition(":")
        return getattr(importlib.import_module(module), attr)(run_config)
    path = str(task.cfg(run_config, "records-path"))
    return JsonlRoundHook(path) if path else NullRoundHook()


# --- validation ---------------------------------------------------------------------------------


def validate_update(
    record: ArrayRecord, reference: Sequence[tuple[str, tuple[int, ...], str]], max_bytes: int
) -> tuple[list[np.ndarray] | None, str]:
    """Check one reply's arrays against the global model's (key, shape, dtype) list.

    Returns ``(arrays, "")`` when valid, else ``(None, reason)``. Sizes are checked before
    anything is deserialised; arrays are read with numpy's ``allow_pickle=False``.
    """
    if not isinstance(record, ArrayRecord):
        return None, "reply has no ArrayRecord"
    keys = list(record.keys())
    want_keys = [k for k, _, _ in reference]
    if keys != want_keys:
        return None, f"array keys differ from the global model ({len(keys)} vs {len(want_keys)} arrays)"
    size = sum(len(record[k].data) for k in keys)
    if size > max_bytes:
        return None, f"update too large: {size} bytes > limit {max_bytes}"
    arrays: list[np.ndarray] = []
    for key, shape, dtype in reference:
        try:
            arr = record[key].numpy()
        except Exception as exc:  # malformed bytes from a remote node
            return None, f"{key}: unreadable array ({type(exc).__name__})"
        if arr.dtype.str != np.dtype(dtype).str:
            return None, f"{key}: dtype {arr.dtype} != {np.dtype(dtype)}"
        if tuple(arr.shape) != tuple(shape):
            return None, f"{key}: shape {tuple(arr.shape)} != {tuple(shape)}"
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            return None, f"{key}: contains NaN or infinite values"
        arrays.append(arr)
    return arrays, ""


def reference_of(record: ArrayRecord) -> list[tuple[str, tuple[int, ...], str]]:
    return [
        (k, tuple(a.shape), a.dtype.str)
        for k, a in zip(record.keys(), record.to_numpy_ndarrays(), strict=True)
    ]


def _num_examples(msg: Message) -> int | None:
    metrics = msg.content.metric_records.get("metrics") if msg.content else None
    if metrics is None or "num-examples" not in metrics:
        return None
    value = metrics["num-examples"]
    return int(value) if isinstance(value, int | float) and value > 0 and value == int(value) else None


# --- signed updates (platform runs) -------------------------------------------------------------


@dataclass(frozen=True)
class SigningContext:
    """What a reply's ``bcfl`` ConfigRecord is checked against: the task on chain and its participants."""

    participants: Mapping[int, str]  # node id -> checksummed wallet
    chain_id: int
    registry_address: str
    chain_task_id: int


def parse_participants(text: str) -> dict[int, str]:
    """``{"node_id": "0xWallet"}`` JSON or ``node_id:0xWallet,...`` → {node id: checksummed wallet}."""
    from eth_utils import to_checksum_address

    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        pairs = json.loads(text).items()
    else:
        pairs = (item.split(":", 1) for item in text.split(",") if item.strip())
    return {int(node): to_checksum_address(str(wallet).strip()) for node, wallet in pairs}


def signing_context_from_config(run_config: Mapping[str, Any]) -> SigningContext | None:
    """The signing context of a platform run, or None (plain runs: tests, simulations, benchmarks)."""
    path = rc_get(run_config, "participants-path")
    text = Path(path).read_text() if path else rc_get(run_config, "participants")
    participants = parse_participants(text)
    if not participants:
        return None
    return SigningContext(
        participants=participants,
        chain_id=rc_get(run_config, "chain-id"),
        registry_address=rc_get(run_config, "registry-address"),
        chain_task_id=rc_get(run_config, "chain-task-id"),
    )


def check_update_signature(
    bcfl: ConfigRecord | Mapping[str, Any] | None,
    update_sha256: str,
    node_id: int,
    server_round: int,
    ctx: SigningContext,
) -> tuple[str, str, str]:
    """Check one reply's ``bcfl`` record against the arrays' own hash and the node's registered wallet.

    Returns ``(wallet, signature, reason)``; ``reason`` is "" when the update is properly signed,
    else starts with one of "unknown node", "missing signature", "update hash mismatch", "bad signature".
    ``update_sha256``: ``zoo.weights_hash`` of the arrays as received (hex, no 0x).
    """
    wallet = ctx.participants.get(int(node_id))
    if wallet is None:
        return "", "", REASON_UNKNOWN_NODE
    if bcfl is None or not all(k in bcfl for k in ("wallet", "update-hash", "signature")):
        return wallet, "", REASON_MISSING_SIGNATURE
    signature = str(bcfl["signature"])
    claimed = str(bcfl["update-hash"]).lower().removeprefix("0x")
    if claimed != update_sha256.lower():
        return (
            wallet,
            signature,
            f"{REASON_HASH_MISMATCH}: signed {claimed[:16]}…, received {update_sha256[:16]}…",
        )
    try:
        message = eip712.update_typed_data(
            chain_id=ctx.chain_id,
            verifying_contract=ctx.registry_address,
            task_id=ctx.chain_task_id,
            round=server_round,
            update_hash="0x" + update_sha256,
        )
        signer = eip712.recover_signer(message, signature)
    except (eip712.SignatureError, ValueError) as exc:
        return wallet, signature, f"{REASON_BAD_SIGNATURE}: {exc}"
    if signer != wallet:
        return (
            wallet,
            signature,
            f"{REASON_BAD_SIGNATURE}: signed by {signer}, node is registered to {wallet}",
        )
    if str(bcfl["wallet"]).lower() != wallet.lower():
        return (
            wallet,
            signature,
            f"{REASON_BAD_SIGNATURE}: claims wallet {bcfl['wallet']}, node is {wallet}'s",
        )
    return wallet, signature, ""


# --- scoring and aggregation rules (hook points for contribution and defence) -------------------


def scorer_from_config(run_config: Mapping[str, Any]):
    """The round scorer: a name registered in ``training.contribution.SCORERS`` ("" = the default), or a
    ``"pkg.module:callable"`` with the same signature."""
    spec = rc_get(run_config, "scorer")
    if ":" in spec:
        module, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module), attr)
    return contribution.scorer(spec).load()


# --- strategy -----------------------------------------------------------------------------------


def _hook_takes_info(hook: RoundHook) -> bool:
    try:
        return "info" in inspect.signature(hook.on_round).parameters
    except (TypeError, ValueError):
        return False


def _from_superlink(msg: Message) -> bool:
    """An error reply the SuperLink made up for a node that did not answer (node id 1 is reserved for it)."""
    return int(msg.metadata.src_node_id) == SUPERLINK_NODE_ID and msg.has_error()


class ValidatingFedAvg(FedAvg):
    """FedAvg that validates each reply, reports each round to a hook, then averages the rest."""

    def __init__(
        self,
        *,
        hook: RoundHook | None = None,
        central_eval=None,
        max_update_bytes: int = 50 * 2**20,
        checkpoint_dir: str | Path | None = None,
        signing: SigningContext | None = None,
        round_offset: int = 0,
        aggregation_rule: str = "fedavg",
        scorer=contribution.accepted_count,
        node_wait_timeout: float = 600.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        rule = defence.RULES.get(aggregation_rule)
        if rule is None or not rule.available:
            available = ", ".join(n for n, r in defence.RULES.items() if r.available)
            raise ValueError(
                f"aggregation rule {aggregation_rule!r} is not implemented yet (available: {available})"
            )
        self._aggregate = rule.load()
        self.hook = hook or NullRoundHook()
        self._hook_info = _hook_takes_info(self.hook)
        self.central_eval = central_eval  # callable(list[np.ndarray]) -> {"accuracy", "loss"}
        self.max_update_bytes = max_update_bytes
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.signing = signing
        self.round_offset = int(round_offset)  # resumed run: Flower's round r is task round r + offset
        self.aggregation_rule = aggregation_rule
        self.scorer = scorer
        self.node_wait_timeout = node_wait_timeout
        self._global: ArrayRecord | None = None
        self._eval_cache: dict[int, dict[str, float]] = {}
        self.history: list[dict[str, Any]] = []

    # --- sampling: only this task's participants ---------------------------------------------

    def _sample(self, grid: Grid, fraction: float, min_nodes: int) -> list[int]:
        """Sample among online participant nodes; waits (bounded) for ``min_available_nodes`` of them."""
        assert self.signing is not None
        allowed = set(self.signing.participants)
        deadline = time.monotonic() + self.node_wait_timeout
        while True:
            online = sorted(n for n in grid.get_node_ids() if n in allowed)
            if len(online) >= max(self.min_available_nodes, min_nodes):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {len(online)} of the task's {len(allowed)} participant nodes are online; "
                    f"at least {max(self.min_available_nodes, min_nodes)} are needed"
                )
            log.info(
                "waiting for participant nodes: %d online, %d needed", len(online), self.min_available_nodes
            )
            time.sleep(1)
        size = min(len(online), max(int(len(online) * fraction), min_nodes))
        return sorted(random.sample(online, size))

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        self._global = arrays  # the model the replies must match
        task_round = server_round + self.round_offset
        if self.signing is None:
            return super().configure_train(task_round, arrays, config, grid)
        if self.fraction_train == 0.0:
            return []
        node_ids = self._sample(grid, self.fraction_train, self.min_train_nodes)
        self._train_sampled = list(node_ids)  # who was asked: a missing reply is attributed to its node
        config["server-round"] = task_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, node_ids, MessageType.TRAIN)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        task_round = server_round + self.round_offset
        if self.signing is None or self.fraction_evaluate == 0.0:
            return super().configure_evaluate(task_round, arrays, config, grid)
        node_ids = self._sample(grid, self.fraction_evaluate, self.min_evaluate_nodes)
        config["server-round"] = task_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, node_ids, MessageType.EVALUATE)

    # --- screening ---------------------------------------------------------------------------

    def screen(
        self, replies: Iterable[Message], server_round: int | None = None
    ) -> tuple[list[Message], list[UpdateRecord], list[UpdateRecord]]:
        """Split replies into (kept messages, accepted records, rejected records).

        ``server_round``: the task round the replies answer (signatures are over it).
        """
        assert self._global is not None, "configure_train must run before aggregate_train"
        reference = reference_of(self._global)
        global_arrays = self._global.to_numpy_ndarrays()
        self._kept_arrays: dict[int, list[np.ndarray]] = {}
        kept: list[Message] = []
        accepted: list[UpdateRecord] = []
        rejected: list[UpdateRecord] = []
        signing = self.signing
        replies = list(replies)
        # The SuperLink answers for a node that went away (node unavailable, reply expired) with an error
        # reply from its own node id; attribute those to the sampled nodes that did not answer themselves.
        superlink_errors = [m for m in replies if _from_superlink(m)]
        answered = {int(m.metadata.src_node_id) for m in replies if not _from_superlink(m)}
        silent = [n for n in getattr(self, "_train_sampled", []) if n not in answered]
        for index, node_id in enumerate(silent):
            why = superlink_errors[index].error.reason if index < len(superlink_errors) else "timed out"
            wallet = signing.participants.get(node_id, "") if signing else ""
            rejected.append(UpdateRecord(node_id, None, 0, None, False, f"{NO_REPLY}{why}", wallet=wallet))
        for msg in replies:
            node_id = int(msg.metadata.src_node_id)
            if _from_superlink(msg):
                continue  # accounted for above
            wallet = signing.participants.get(node_id, "") if signing else ""
            if signing is not None and not wallet:
                rejected.append(UpdateRecord(node_id, None, 0, None, False, REASON_UNKNOWN_NODE))
                continue
            if msg.has_error():
                rejected.append(
                    UpdateRecord(
                        node_id, None, 0, None, False, f"client error: {msg.error.reason}", wallet=wallet
                    )
                )
                continue
            n = _num_examples(msg)
            array_records = msg.content.array_records
            metric_records = msg.content.metric_records
            if len(array_records) != 1 or len(metric_records) != 1:
                reason = "reply must carry exactly one ArrayRecord and one MetricRecord"
                rejected.append(UpdateRecord(node_id, None, n or 0, None, False, reason, wallet=wallet))
                continue
            if n is None:
                rejected.append(
                    UpdateRecord(
                        node_id, None, 0, None, False, "missing or invalid num-examples", wallet=wallet
                    )
                )
                continue
            arrays, reason = validate_update(
                next(iter(array_records.values())), reference, self.max_update_bytes
            )
            metrics = {
                k: float(v)
                for k, v in next(iter(metric_records.values())).items()
                if isinstance(v, int | float)
            }
            if arrays is None:
                rejected.append(UpdateRecord(node_id, None, n, None, False, reason, metrics, wallet=wallet))
                continue
            digest = zoo.weights_hash(arrays)
            signature = ""
            if signing is not None:
                bcfl = msg.content.config_records.get(BCFL_RECORD)
                round_ = server_round if server_round is not None else 0
                wallet, signature, reason = check_update_signature(bcfl, digest, node_id, round_, signing)
                if reason:
                    rejected.append(
                        UpdateRecord(node_id, digest, n, None, False, reason, metrics, wallet, signature)
                    )
                    continue
            norm = float(
                np.sqrt(
                    sum(
                        float(np.sum((a.astype(np.float64) - g) ** 2))
                        for a, g in zip(arrays, global_arrays, strict=True)
                    )
                )
            )
            accepted.append(UpdateRecord(node_id, digest, n, norm, True, "", metrics, wallet, signature))
            self._kept_arrays[node_id] = arrays
            kept.append(msg)
        return kept, accepted, rejected

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        task_round = server_round + self.round_offset
        replies = list(replies)
        kept, accepted, rejected = self.screen(replies, task_round)
        for r in rejected:
            log.warning("round %s: rejected update from node %s: %s", task_round, r.node_id, r.reason)
        if self.signing is not None:  # platform runs: a round needs min-nodes participants who answered
            silent = [r for r in rejected if r.reason.startswith(NO_REPLY)]
            answered = len(accepted) + len(rejected) - len(silent)
            if answered < self.min_train_nodes:
                raise TooFewRepliesError(
                    f"round {task_round}: only {answered} participant(s) answered, the task needs "
                    f"{self.min_train_nodes} ("
                    + "; ".join(f"{r.wallet or r.node_id}: {r.reason}" for r in silent)
                    + ")"
                )
        arrays, train_metrics = (None, None)
        if kept:
            arrays, train_metrics = self._aggregate(self, task_round, kept)
        new_global = arrays if arrays is not None else self._global
        global_np = new_global.to_numpy_ndarrays()
        metrics: dict[str, float] = {}
        if train_metrics is not None:
            metrics.update(
                {f"train/{k}": float(v) for k, v in train_metrics.items() if isinstance(v, int | float)}
            )
        if self.central_eval is not None:
            central = self.central_eval(global_np)
            self._eval_cache[task_round] = central
            metrics.update(central)
        metrics["accepted"] = len(accepted)
        metrics["rejected"] = len(rejected)
        scores = self.scorer(
            task_round, accepted, rejected, self._global.to_numpy_ndarrays(), self._kept_arrays,
            self.central_eval,
        )  # fmt: skip
        for u in accepted:
            u.score = float(scores.get(u.node_id, 0.0))
        info: dict[str, Any] = {"aggregation_rule": self.aggregation_rule}
        if self.checkpoint_dir is not None:
            path = self.checkpoint_dir / f"round-{task_round:04d}.safetensors"
            digest = save_safetensors(
                path,
                list(new_global.keys()),
                global_np,
                metadata={"round": str(task_round), "weights_sha256": zoo.weights_hash(global_np)},
            )
            info.update({"checkpoint": str(path), "checkpoint_sha256": digest})
        self.history.append({"round": task_round, **metrics})
        if self._hook_info:
            self.hook.on_round(task_round, accepted, rejected, global_np, metrics, info=info)
        else:
            self.hook.on_round(task_round, accepted, rejected, global_np, metrics)
        return arrays, train_metrics

    def evaluate_fn(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Central evaluation for ``Strategy.start``; reuses the score computed in aggregate_train."""
        if self.central_eval is None:
            return None
        task_round = server_round + self.round_offset
        result = self._eval_cache.get(task_round)
        if result is None:
            result = self.central_eval(arrays.to_numpy_ndarrays())
            self._eval_cache[task_round] = result
        log.info("round %s: central accuracy %.4f loss %.4f", task_round, result["accuracy"], result["loss"])
        return MetricRecord(result)


# --- output -------------------------------------------------------------------------------------


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_safetensors(
    path: str | Path,
    keys: Sequence[str],
    arrays: Sequence[np.ndarray],
    metadata: dict[str, str] | None = None,
) -> str:
    """Write arrays as safetensors and ``<path>.sha256``; returns the file's sha256."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(zoo.arrays_to_dict(keys, arrays), str(tmp), metadata=metadata or {})
    tmp.replace(path)
    digest = sha256_file(path)
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return digest


# --- app ----------------------------------------------------------------------------------------

app = ServerApp()


def load_checkpoint(path: str | Path, keys: Sequence[str], expected_sha256: str = "") -> list[np.ndarray]:
    """Arrays of a round checkpoint in ``keys`` order; checks their ``weights_hash`` when given."""
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if set(tensors) != set(keys):
        raise ValueError(f"checkpoint {path} does not hold this model's arrays")
    arrays = [tensors[k] for k in keys]
    if expected_sha256 and zoo.weights_hash(arrays) != expected_sha256.lower().removeprefix("0x"):
        raise ValueError(f"checkpoint {path} does not have the committed weights hash {expected_sha256}")
    return arrays


class PollingGrid(Grid):
    """A Grid that polls for replies every ``poll_interval`` seconds (Flower's own grid sleeps 3 s).

    Everything else is delegated to the grid Flower gave the ServerApp. With replies that take
    about a second, the 3 s sleep is most of a round's wall time; polling the SuperLink every 0.5 s
    costs one small request per poll.
    """

    def __init__(self, grid: Grid, poll_interval: float) -> None:
        if poll_interval <= 0:
            raise ValueError("reply-poll-interval must be positive")
        self._grid = grid
        self.poll_interval = float(poll_interval)

    def set_run(self, run) -> None:  # noqa: ANN001 - flwr's Run
        self._grid.set_run(run)

    @property
    def run(self):  # noqa: ANN201
        return self._grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self._grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def get_nodes(self):  # noqa: ANN201
        return self._grid.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Same contract as Flower's: push, then pull until every reply is in or ``timeout`` passes."""
        pending = set(self.push_messages(messages))
        end = time.monotonic() + (timeout if timeout is not None else 0.0)
        replies: list[Message] = []
        while timeout is None or time.monotonic() < end:
            got = list(self.pull_messages(pending))
            replies.extend(got)
            pending.difference_update(m.metadata.reply_to_message_id for m in got)
            if not pending:
                break
            time.sleep(
                self.poll_interval
                if timeout is None
                else max(0.0, min(self.poll_interval, end - time.monotonic()))
            )
        return replies

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def start_heartbeat(path: str | Path, interval: float = 2.0) -> threading.Event:
    """Touch ``path`` every ``interval`` seconds from a daemon thread until the returned event is set.

    The platform's follower reads the file's age to tell a dead ServerApp (kill -9, OOM) from a slow
    round long before Flower's own run heartbeat gives up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            path.write_text(f"{time.time():.3f}\n")
            stop.wait(interval)

    threading.Thread(target=beat, name="bcfl-heartbeat", daemon=True).start()
    return stop


def write_error(path: str | Path | None, exc: BaseException) -> None:
    """Leave the reason a run failed where the platform reads it (the ``error-path`` run-config key)."""
    if not path:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(str(exc) or type(exc).__name__)
    except OSError as err:  # the reason is also in the run's log
        log.warning("cannot write %s: %s", path, err)


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    heartbeat = rc_get(rc, "heartbeat-path")
    stop_heartbeat = start_heartbeat(heartbeat) if heartbeat else None
    spec = task.model_spec(rc)
    model = spec.build()
    keys = zoo.state_keys(model)
    x_test, y_test = task.server_test_data(rc)
    eval_model = spec.build()

    def central_eval(arrays: Sequence[np.ndarray]) -> dict[str, float]:
        zoo.set_arrays(eval_model, arrays)
        loss, acc = task.evaluate(eval_model, x_test, y_test)
        return {"accuracy": acc, "loss": loss}

    output_dir = str(task.cfg(rc, "output-dir"))
    min_nodes = task.cfg(rc, "min-nodes")
    fraction_evaluate = task.cfg(rc, "fraction-evaluate")
    total_rounds = task.cfg(rc, "num-server-rounds")
    resume_from = rc_get(rc, "resume-from-round")
    if resume_from:
        checkpoint = rc_get(rc, "initial-checkpoint")
        if not checkpoint:
            raise ValueError("resume-from-round needs initial-checkpoint")
        zoo.set_arrays(model, load_checkpoint(checkpoint, keys, rc_get(rc, "initial-sha256")))
        log.info("resuming at round %s from %s", resume_from + 1, checkpoint)
    strategy = ValidatingFedAvg(
        hook=hook_from_config(rc),
        central_eval=central_eval,
        max_update_bytes=int(task.cfg(rc, "max-update-mb") * 2**20),
        checkpoint_dir=Path(output_dir) / "checkpoints" if output_dir else None,
        signing=signing_context_from_config(rc),
        round_offset=resume_from,
        aggregation_rule=rc_get(rc, "aggregation-rule"),
        scorer=scorer_from_config(rc),
        node_wait_timeout=task.cfg(rc, "round-timeout"),
        fraction_train=task.cfg(rc, "fraction-train"),
        fraction_evaluate=fraction_evaluate,
        min_train_nodes=min_nodes,
        min_evaluate_nodes=min_nodes if fraction_evaluate > 0 else 0,
        min_available_nodes=min_nodes,
    )
    initial = ArrayRecord(model.state_dict())
    started = time.monotonic()
    try:
        result = strategy.start(
            grid=PollingGrid(grid, task.cfg(rc, "reply-poll-interval")),
            initial_arrays=initial,
            num_rounds=max(0, total_rounds - resume_from),
            timeout=task.cfg(rc, "round-timeout"),
            evaluate_fn=strategy.evaluate_fn,
        )
    except Exception as exc:
        write_error(rc_get(rc, "error-path"), exc)
        raise
    elapsed = time.monotonic() - started
    final = (result.arrays if len(result.arrays) else initial).to_numpy_ndarrays()
    final_metrics = strategy.history[-1] if strategy.history else {}
    log.info("training finished in %.1fs; final central metrics %s", elapsed, final_metrics)
    if output_dir:
        out = Path(output_dir)
        weights_sha = zoo.weights_hash(final)
        file_sha = save_safetensors(
            out / "global_model.safetensors",
            keys,
            final,
            metadata={"model": spec.kind, "weights_sha256": weights_sha},
        )
        card = {
            "model": spec.kind,
            "feature_shape": list(spec.feature_shape),
            "num_classes": spec.num_classes,
            "hidden": spec.hidden,
            "keys": keys,
            "weights_sha256": weights_sha,
            "file_sha256": file_sha,
            "rounds": total_rounds,
            "resumed_from_round": resume_from,
            "history": strategy.history,
            "seconds": elapsed,
        }
        (out / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    if stop_heartbeat is not None:
        stop_heartbeat.set()
