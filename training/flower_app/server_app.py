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

The app's parts, along Flower's grain: ``strategy`` (ValidatingFedAvg), ``screening`` (reply checks),
``signatures`` (signed updates), ``round_records`` (UpdateRecord, hooks), ``checkpoints`` (safetensors),
``polling_grid`` (PollingGrid), ``run_config`` (platform keys). This module keeps the app and its ``main``;
the names below are re-exported for callers that import them from here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp

if __package__:  # imported from the repository as training.flower_app.server_app
    from . import task
    from .checkpoints import load_checkpoint, save_safetensors, sha256_file
    from .polling_grid import PollingGrid
    from .round_records import JsonlRoundHook, NullRoundHook, RoundHook, UpdateRecord, hook_from_config
    from .run_config import PLATFORM_DEFAULTS, rc_get, scorer_from_config
    from .screening import NO_REPLY, SUPERLINK_NODE_ID, reference_of, validate_update
    from .signatures import (
        BCFL_RECORD,
        REASON_BAD_SIGNATURE,
        REASON_HASH_MISMATCH,
        REASON_MISSING_SIGNATURE,
        REASON_UNKNOWN_NODE,
        SigningContext,
        check_update_signature,
        parse_participants,
        signing_context_from_config,
    )
    from .strategy import TooFewRepliesError, ValidatingFedAvg
else:  # loaded by Flower from the unpacked app bundle, where these modules sit next to this file
    import task  # type: ignore[no-redef]
    from checkpoints import load_checkpoint, save_safetensors  # type: ignore[no-redef]
    from polling_grid import PollingGrid  # type: ignore[no-redef]
    from round_records import hook_from_config  # type: ignore[no-redef]
    from run_config import rc_get, scorer_from_config  # type: ignore[no-redef]
    from signatures import signing_context_from_config  # type: ignore[no-redef]
    from strategy import ValidatingFedAvg  # type: ignore[no-redef]

from training import zoo

__all__ = [
    "BCFL_RECORD",
    "NO_REPLY",
    "PLATFORM_DEFAULTS",
    "REASON_BAD_SIGNATURE",
    "REASON_HASH_MISMATCH",
    "REASON_MISSING_SIGNATURE",
    "REASON_UNKNOWN_NODE",
    "SUPERLINK_NODE_ID",
    "JsonlRoundHook",
    "NullRoundHook",
    "PollingGrid",
    "RoundHook",
    "SigningContext",
    "TooFewRepliesError",
    "UpdateRecord",
    "ValidatingFedAvg",
    "app",
    "check_update_signature",
    "hook_from_config",
    "load_checkpoint",
    "main",
    "parse_participants",
    "rc_get",
    "reference_of",
    "save_safetensors",
    "scorer_from_config",
    "sha256_file",
    "signing_context_from_config",
    "start_heartbeat",
    "validate_update",
    "write_error",
]

log = logging.getLogger("bcfl.serverapp")

app = ServerApp()


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


# --- main, in steps -----------------------------------------------------------------------------


def central_evaluator(rc, spec) -> Callable[[Sequence[np.ndarray]], dict[str, float]]:
    """``arrays -> {"accuracy", "loss"}`` on the run's held-out test data, with a model of its own."""
    x_test, y_test = task.server_test_data(rc)
    eval_model = spec.build()

    def central_eval(arrays: Sequence[np.ndarray]) -> dict[str, float]:
        zoo.set_arrays(eval_model, arrays)
        loss, acc = task.evaluate(eval_model, x_test, y_test)
        return {"accuracy": acc, "loss": loss}

    # What a scorer needs to value coalitions of updates on the same data (training.flower_app.valuation).
    central_eval.model, central_eval.x, central_eval.y = spec.build(), x_test, y_test  # type: ignore[attr-defined]
    return central_eval


def resume_model(rc, model, keys: Sequence[str]) -> None:
    """For ``resume-from-round`` N, load round N's checkpoint into ``model`` (``ValueError`` without one)."""
    resume_from = rc_get(rc, "resume-from-round")
    if resume_from:
        checkpoint = rc_get(rc, "initial-checkpoint")
        if not checkpoint:
            raise ValueError("resume-from-round needs initial-checkpoint")
        zoo.set_arrays(model, load_checkpoint(checkpoint, keys, rc_get(rc, "initial-sha256")))
        log.info("resuming at round %s from %s", resume_from + 1, checkpoint)


def build_strategy(rc, central_eval) -> ValidatingFedAvg:
    """The run's ValidatingFedAvg, configured from the run config."""
    output_dir = str(task.cfg(rc, "output-dir"))
    min_nodes = task.cfg(rc, "min-nodes")
    fraction_evaluate = task.cfg(rc, "fraction-evaluate")
    return ValidatingFedAvg(
        hook=hook_from_config(rc),
        central_eval=central_eval,
        max_update_bytes=int(task.cfg(rc, "max-update-mb") * 2**20),
        checkpoint_dir=Path(output_dir) / "checkpoints" if output_dir else None,
        signing=signing_context_from_config(rc),
        round_offset=rc_get(rc, "resume-from-round"),
        aggregation_rule=rc_get(rc, "aggregation-rule"),
        scorer=scorer_from_config(rc),
        node_wait_timeout=task.cfg(rc, "round-timeout"),
        fraction_train=task.cfg(rc, "fraction-train"),
        fraction_evaluate=fraction_evaluate,
        min_train_nodes=min_nodes,
        min_evaluate_nodes=min_nodes if fraction_evaluate > 0 else 0,
        min_available_nodes=min_nodes,
    )


def write_final_model(out: Path, spec, keys, final, strategy: ValidatingFedAvg, rc, seconds: float) -> None:
    """``global_model.safetensors`` (+ ``.sha256``) and the model card ``model.json`` in ``out``."""
    weights_sha = zoo.weights_hash(final)
    file_sha = save_safetensors(
        out / "global_model.safetensors",
        keys,
        final,
        metadata={"model": spec.kind, "weights_sha256": weights_sha},
    )
    card: dict[str, Any] = {
        "model": spec.kind,
        "feature_shape": list(spec.feature_shape),
        "num_classes": spec.num_classes,
        "hidden": spec.hidden,
        "keys": keys,
        "weights_sha256": weights_sha,
        "file_sha256": file_sha,
        "rounds": task.cfg(rc, "num-server-rounds"),
        "resumed_from_round": rc_get(rc, "resume-from-round"),
        "history": strategy.history,
        "seconds": seconds,
    }
    (out / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True))


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    heartbeat = rc_get(rc, "heartbeat-path")
    stop_heartbeat = start_heartbeat(heartbeat) if heartbeat else None
    spec = task.model_spec(rc)
    model = spec.build()
    keys = zoo.state_keys(model)
    central_eval = central_evaluator(rc, spec)
    resume_model(rc, model, keys)
    strategy = build_strategy(rc, central_eval)
    initial = ArrayRecord(model.state_dict())
    started = time.monotonic()
    try:
        result = strategy.start(
            grid=PollingGrid(grid, task.cfg(rc, "reply-poll-interval")),
            initial_arrays=initial,
            num_rounds=max(0, task.cfg(rc, "num-server-rounds") - rc_get(rc, "resume-from-round")),
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
    output_dir = str(task.cfg(rc, "output-dir"))
    if output_dir:
        write_final_model(Path(output_dir), spec, keys, final, strategy, rc, elapsed)
    if stop_heartbeat is not None:
        stop_heartbeat.set()
