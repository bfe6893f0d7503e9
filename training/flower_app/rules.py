"""Aggregation functions named by ``training.defence.RULES``: the pure rules of :mod:`training.aggregation`
around Flower Messages.

Each is ``fn(strategy, server_round, kept_replies) -> (ArrayRecord | None, MetricRecord | None)`` where
``kept_replies`` are the screened (valid, signed) replies of the round and ``strategy`` the running
ValidatingFedAvg (``weighted_by_key``, ``train_metrics_aggr_fn``, ``central_eval``, ``round_scores``). None
of them mutates the replies (the scorer still needs them), and each records what it left out in
``strategy.rule_exclusions`` (node id → reason) for the round's records: that is "what the aggregate is
made of", not evidence against a participant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord

from training import aggregation


def fedavg(strategy: Any, server_round: int, kept: list[Message]):
    """FedAvg (McMahan et al. 2017): the weighted average by ``num-examples``."""
    return _apply(aggregation.fedavg, strategy, kept)


def multikrum(strategy: Any, server_round: int, kept: list[Message]):
    """Multi-Krum (Blanchard et al. 2017), see :func:`training.aggregation.multikrum`."""
    return _apply(aggregation.multikrum, strategy, kept)


def trimmed_mean(strategy: Any, server_round: int, kept: list[Message]):
    """Coordinate-wise trimmed mean (Yin et al. 2018), see :func:`training.aggregation.trimmed_mean`."""
    return _apply(aggregation.trimmed_mean, strategy, kept)


def median(strategy: Any, server_round: int, kept: list[Message]):
    """Coordinate-wise median (Yin et al. 2018)."""
    return _apply(aggregation.median, strategy, kept)


def validation_loo(strategy: Any, server_round: int, kept: list[Message]):
    """Validation-set leave-one-out on the task's committed validation set (``strategy.central_eval``);
    ``n + 1`` evaluations, FedAvg without a validation set. See :func:`training.aggregation.validation_loo`."""
    return _apply(aggregation.validation_loo, strategy, kept)


def validation_shapley(strategy: Any, server_round: int, kept: list[Message]):
    """Leaves out the updates with a negative Shapley value in the round (``strategy.round_scores``, node id
    → value, set by the strategy before aggregating). See :func:`training.aggregation.validation_shapley`."""
    return _apply(
        aggregation.validation_shapley, strategy, kept, _shapley_scores(strategy, server_round, kept)
    )


def _apply(combine, strategy: Any, kept: list[Message], scores: list[float] | None = None):
    excluded = _exclusions(strategy)
    excluded.clear()
    if not kept:
        return None, None
    records = [_arrays(m) for m in kept]
    keys = list(records[0].keys())
    updates = [rec.to_numpy_ndarrays() for rec in records]
    weights = [float(_metric_record(m).get(strategy.weighted_by_key, 1.0)) for m in kept]
    result = combine(updates, weights, loss=_loss(strategy), scores=scores)
    for i, reason in result.excluded.items():
        excluded[_node(kept[i])] = reason
    out = ArrayRecord({k: Array(np.asarray(a)) for k, a in zip(keys, result.arrays, strict=True)})
    return out, _metrics(strategy, [kept[i].content for i in result.used])


def _loss(strategy: Any):
    central_eval = getattr(strategy, "central_eval", None)
    if central_eval is None:
        return None
    return lambda arrays: float(central_eval(list(arrays))["loss"])


def _shapley_scores(strategy: Any, server_round: int, kept: list[Message]) -> list[float] | None:
    """The kept updates' scores in the round (``strategy.round_scores``: the task's scorer, by default the
    Shapley values on the validation loss); None when the strategy has none for every kept update."""
    scores = getattr(strategy, "round_scores", None)
    if not isinstance(scores, dict) or not all(_node(m) in scores for m in kept):
        return None
    return [float(scores[_node(m)]) for m in kept]


def _arrays(msg: Message) -> ArrayRecord:
    return next(iter(msg.content.array_records.values()))


def _metric_record(msg: Message) -> MetricRecord:
    return next(iter(msg.content.metric_records.values()))


def _metrics(strategy: Any, contents: list) -> MetricRecord | None:
    return strategy.train_metrics_aggr_fn(contents, strategy.weighted_by_key)


def _node(msg: Message) -> int:
    return int(msg.metadata.src_node_id)


def _exclusions(strategy: Any) -> dict[int, str]:
    if not isinstance(getattr(strategy, "rule_exclusions", None), dict):
        strategy.rule_exclusions = {}
    return strategy.rule_exclusions
