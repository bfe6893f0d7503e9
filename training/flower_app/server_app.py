"""BCFL ServerApp: validated FedAvg with a per-round hook, central evaluation, safetensors output.

Every training reply is checked before it counts (shapes and dtypes match the global model,
all values finite, size limit); a bad reply is dropped with a reason and the round goes on.
Per round, a ``RoundHook`` sees every accepted and rejected update and the new global model:
the default hook appends one JSON line per round to ``records-path``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

if __package__:  # imported from the repository as training.flower_app.server_app
    from . import task
else:  # loaded by Flower from the unpacked app bundle
    import task  # type: ignore[no-redef]

from training import zoo

log = logging.getLogger("bcfl.serverapp")


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

    def on_round(self, server_round, accepted, rejected, global_arrays, metrics) -> None:
        line = {
            "round": server_round,
            "global_sha256": zoo.weights_hash(global_arrays),
            "accuracy": metrics.get("accuracy"),
            "loss": metrics.get("loss"),
            "metrics": metrics,
            "updates": [asdict(u) for u in [*accepted, *rejected]],
            "time": time.time(),
        }
        with self.path.open("a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")


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


# --- strategy -----------------------------------------------------------------------------------


class ValidatingFedAvg(FedAvg):
    """FedAvg that validates each reply, reports each round to a hook, then averages the rest."""

    def __init__(
        self,
        *,
        hook: RoundHook | None = None,
        central_eval=None,
        max_update_bytes: int = 50 * 2**20,
        checkpoint_dir: str | Path | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.hook = hook or NullRoundHook()
        self.central_eval = central_eval  # callable(list[np.ndarray]) -> {"accuracy", "loss"}
        self.max_update_bytes = max_update_bytes
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._global: ArrayRecord | None = None
        self._eval_cache: dict[int, dict[str, float]] = {}
        self.history: list[dict[str, Any]] = []

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        self._global = arrays  # the model the replies must match
        return super().configure_train(server_round, arrays, config, grid)

    def screen(
        self, replies: Iterable[Message]
    ) -> tuple[list[Message], list[UpdateRecord], list[UpdateRecord]]:
        """Split replies into (kept messages, accepted records, rejected records)."""
        assert self._global is not None, "configure_train must run before aggregate_train"
        reference = reference_of(self._global)
        global_arrays = self._global.to_numpy_ndarrays()
        kept: list[Message] = []
        accepted: list[UpdateRecord] = []
        rejected: list[UpdateRecord] = []
        for msg in replies:
            node_id = int(msg.metadata.src_node_id)
            if msg.has_error():
                rejected.append(
                    UpdateRecord(node_id, None, 0, None, False, f"client error: {msg.error.reason}")
                )
                continue
            n = _num_examples(msg)
            array_records = msg.content.array_records
            metric_records = msg.content.metric_records
            if len(array_records) != 1 or len(metric_records) != 1:
                reason = "reply must carry exactly one ArrayRecord and one MetricRecord"
                rejected.append(UpdateRecord(node_id, None, n or 0, None, False, reason))
                continue
            if n is None:
                rejected.append(
                    UpdateRecord(node_id, None, 0, None, False, "missing or invalid num-examples")
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
                rejected.append(UpdateRecord(node_id, None, n, None, False, reason, metrics))
                continue
            norm = float(
                np.sqrt(
                    sum(
                        float(np.sum((a.astype(np.float64) - g) ** 2))
                        for a, g in zip(arrays, global_arrays, strict=True)
                    )
                )
            )
            accepted.append(UpdateRecord(node_id, zoo.weights_hash(arrays), n, norm, True, "", metrics))
            kept.append(msg)
        return kept, accepted, rejected

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        kept, accepted, rejected = self.screen(replies)
        for r in rejected:
            log.warning("round %s: rejected update from node %s: %s", server_round, r.node_id, r.reason)
        arrays, train_metrics = (None, None)
        if kept:
            arrays, train_metrics = super().aggregate_train(server_round, kept)
        new_global = arrays if arrays is not None else self._global
        global_np = new_global.to_numpy_ndarrays()
        metrics: dict[str, float] = {}
        if train_metrics is not None:
            metrics.update(
                {f"train/{k}": float(v) for k, v in train_metrics.items() if isinstance(v, int | float)}
            )
        if self.central_eval is not None:
            central = self.central_eval(global_np)
            self._eval_cache[server_round] = central
            metrics.update(central)
        metrics["accepted"] = len(accepted)
        metrics["rejected"] = len(rejected)
        if self.checkpoint_dir is not None:
            save_safetensors(
                self.checkpoint_dir / f"round-{server_round:04d}.safetensors",
                list(new_global.keys()),
                global_np,
            )
        self.history.append({"round": server_round, **metrics})
        self.hook.on_round(server_round, accepted, rejected, global_np, metrics)
        return arrays, train_metrics

    def evaluate_fn(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Central evaluation for ``Strategy.start``; reuses the score computed in aggregate_train."""
        if self.central_eval is None:
            return None
        result = self._eval_cache.get(server_round)
        if result is None:
            result = self.central_eval(arrays.to_numpy_ndarrays())
            self._eval_cache[server_round] = result
        log.info(
            "round %s: central accuracy %.4f loss %.4f", server_round, result["accuracy"], result["loss"]
        )
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


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
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
    strategy = ValidatingFedAvg(
        hook=hook_from_config(rc),
        central_eval=central_eval,
        max_update_bytes=int(task.cfg(rc, "max-update-mb") * 2**20),
        checkpoint_dir=Path(output_dir) / "checkpoints" if output_dir else None,
        fraction_train=task.cfg(rc, "fraction-train"),
        fraction_evaluate=fraction_evaluate,
        min_train_nodes=min_nodes,
        min_evaluate_nodes=min_nodes if fraction_evaluate > 0 else 0,
        min_available_nodes=min_nodes,
    )
    initial = ArrayRecord(model.state_dict())
    started = time.monotonic()
    result = strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=task.cfg(rc, "num-server-rounds"),
        timeout=task.cfg(rc, "round-timeout"),
        evaluate_fn=strategy.evaluate_fn,
    )
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
            "rounds": task.cfg(rc, "num-server-rounds"),
            "history": strategy.history,
            "seconds": elapsed,
        }
        (out / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True))
