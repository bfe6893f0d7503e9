"""Round records of the ServerApp: one ``UpdateRecord`` per reply, and the hook that sees every round.

The default hook (``records-path`` set) appends one JSON line per round; the platform's follower job
ingests that file (a process boundary: no Django in the ServerApp).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

if __package__:  # imported from the repository as training.flower_app.round_records
    from . import task
    from .run_config import load_callable
else:  # loaded by Flower from the unpacked app bundle
    import task  # type: ignore[no-redef]
    from run_config import load_callable  # type: ignore[no-redef]

from training import zoo


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
    excluded: str = ""  # why the aggregation rule left this accepted update out of the aggregate ("" = used)
    flags: list[dict] = field(default_factory=list)  # detection signals (training.defence.detect)


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


def hook_from_config(run_config: Mapping[str, Any]) -> RoundHook:
    """``hook-factory = "pkg.module:callable"`` (called with the run config) or the JSONL hook."""
    factory = str(task.cfg(run_config, "hook-factory"))
    if factory:
        return load_callable(factory)(run_config)
    path = str(task.cfg(run_config, "records-path"))
    return JsonlRoundHook(path) if path else NullRoundHook()


def hook_takes_info(hook: RoundHook) -> bool:
    """Whether ``hook.on_round`` accepts the ``info`` keyword (checkpoint path, aggregation rule)."""
    try:
        return "info" in inspect.signature(hook.on_round).parameters
    except (TypeError, ValueError):
        return False
