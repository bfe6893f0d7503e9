"""Aggregation functions named by ``training.defence.RULES``.

Each is ``fn(strategy, server_round, kept_replies) -> (ArrayRecord | None, MetricRecord | None)`` where
``kept_replies`` are the screened (valid, signed) replies of the round and ``strategy`` the running
ValidatingFedAvg (``weighted_by_key``, ``train_metrics_aggr_fn``, ``central_eval``). None of them mutates the
replies (Flower's FedMedian and FedTrimmedAvg pop arrays out of them; the scorer still needs them), and each
records what it left out in ``strategy.rule_exclusions`` (node id → reason) for the round's records: that
is "what the aggregate is made of", not evidence against a participant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.fedtrimmedavg import trim_mean
from flwr.serverapp.strategy.multikrum import compute_distances
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

TRIM_FRACTION = 0.2  # trimmed mean: cut this fraction of values at each end, per coordinate


def fedavg(strategy: Any, server_round: int, kept: list[Message]):
    """FedAvg (McMahan et al. 2017): Flower's weighted average by ``num-examples``."""
    _exclusions(strategy).clear()
    return FedAvg.aggregate_train(strategy, server_round, kept)


def multikrum(strategy: Any, server_round: int, kept: list[Message]):
    """Multi-Krum (Blanchard et al. 2017): with ``f = ⌊(n − 3) / 2⌋`` assumed attackers, score each
    update by the summed squared distance to its ``n − f − 2`` nearest others and average (FedAvg) the
    ``n − f`` best."""
    excluded = _exclusions(strategy)
    excluded.clear()
    if not kept:
        return None, None
    n = len(kept)
    f = max(0, (n - 3) // 2)
    records = [_arrays(m) for m in kept]
    dist = compute_distances(records)
    closest = max(1, n - f - 2)
    scores = np.array([np.sort(np.delete(dist[i], i))[:closest].sum() if n > 1 else 0.0 for i in range(n)])
    keep = np.argsort(scores, kind="stable")[: n - f]
    threshold = float(scores[keep].max()) if len(keep) else 0.0
    for i in set(range(n)) - set(keep.tolist()):
        excluded[_node(kept[i])] = (
            f"multikrum: Krum score {scores[i]:.4g} above the {n - f} kept (threshold {threshold:.4g})"
        )
    chosen = [kept[i].content for i in sorted(keep.tolist())]
    return aggregate_arrayrecords(chosen, strategy.weighted_by_key), _metrics(strategy, chosen)


def trimmed_mean(strategy: Any, server_round: int, kept: list[Message]):
    """Coordinate-wise trimmed mean (Yin et al. 2018), cutting ``TRIM_FRACTION`` at each end."""
    return _coordinatewise(strategy, kept, lambda stack: trim_mean(stack, TRIM_FRACTION))


def median(strategy: Any, server_round: int, kept: list[Message]):
    """Coordinate-wise median (Yin et al. 2018)."""
    return _coordinatewise(strategy, kept, lambda stack: np.median(stack, axis=0))


def validation_loo(strategy: Any, server_round: int, kept: list[Message]):
    """Validation-set filter: leave one out on the round's FedAvg aggregate.

    The aggregate's loss on the task's committed validation set (``strategy.central_eval``) is computed
    with all kept updates and without each one; an update whose removal lowers the loss is left out, and
    the rest are averaged (FedAvg). Needs ``n + 1`` evaluations. With no validation set it is FedAvg.
    """
    excluded = _exclusions(strategy)
    excluded.clear()
    central_eval: Callable[[Sequence[np.ndarray]], dict[str, float]] | None = strategy.central_eval
    if not kept or central_eval is None or len(kept) < 3:
        return FedAvg.aggregate_train(strategy, server_round, kept)
    contents = [m.content for m in kept]
    flat = [_arrays(m).to_numpy_ndarrays() for m in kept]
    weights = np.array([float(c["metrics"].get(strategy.weighted_by_key, 1.0)) for c in contents])
    weights = weights if weights.sum() > 0 else np.ones(len(kept))

    def loss(mask: np.ndarray) -> float:
        p = weights * mask / (weights * mask).sum()
        avg = [sum(pi * arrs[k] for pi, arrs in zip(p, flat, strict=True) if pi) for k in range(len(flat[0]))]
        return float(central_eval(avg)["loss"])

    everyone = np.ones(len(kept), dtype=bool)
    base = loss(everyone)
    chosen = []
    for i, msg in enumerate(kept):
        without = everyone.copy()
        without[i] = False
        delta = loss(without) - base  # > 0: the aggregate is worse without this update
        if delta < 0:
            excluded[_node(msg)] = (
                f"validation_loo: the aggregate's validation loss is {-delta:.4g} lower without this update"
            )
        else:
            chosen.append(msg.content)
    if not chosen:  # never leave a round empty: fall back to everyone
        excluded.clear()
        chosen = contents
    return aggregate_arrayrecords(chosen, strategy.weighted_by_key), _metrics(strategy, chosen)


def _coordinatewise(strategy: Any, kept: list[Message], reduce: Callable[[np.ndarray], np.ndarray]):
    _exclusions(strategy).clear()
    if not kept:
        return None, None
    records = [_arrays(m) for m in kept]
    out = ArrayRecord()
    for key in records[0].keys():
        stack = np.stack([rec[key].numpy() for rec in records])
        out[key] = Array(np.asarray(reduce(stack), dtype=stack.dtype))
    return out, _metrics(strategy, [m.content for m in kept])


def _arrays(msg: Message) -> ArrayRecord:
    return next(iter(msg.content.array_records.values()))


def _metrics(strategy: Any, contents: list) -> MetricRecord | None:
    return strategy.train_metrics_aggr_fn(contents, strategy.weighted_by_key)


def _node(msg: Message) -> int:
    return int(msg.metadata.src_node_id)


def _exclusions(strategy: Any) -> dict[int, str]:
    if not isinstance(getattr(strategy, "rule_exclusions", None), dict):
        strategy.rule_exclusions = {}
    return strategy.rule_exclusions
