"""Aggregation rules as pure numpy functions: a round's updates and weights in, the aggregate out.

Django-free and Flower-free, so the ServerApp (``training/flower_app/rules.py`` wraps each one around
Flower Messages) and the benchmarks (``benchmarks/robustness.py``) run the same code. Every function is

    combine(updates, weights, *, loss=None, scores=None) -> Combined

``updates``: one list of arrays per update, all in the model's key order and shapes; ``weights`` (n,):
example counts (floats ≥ 0; all zero → equal weights); ``loss(arrays) -> float``: the loss of a model on
the task's committed validation set (None: no validation set); ``scores`` (n,): the round's contribution
scores (Shapley values on that validation set). None of them mutates its inputs. ``Combined.excluded``
says what a rule left out of the aggregate and why (update index → reason): that is what the aggregate is
made of, not evidence against a participant (that is ``training.defence.detect``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Arrays = list[np.ndarray]
Loss = Callable[[Sequence[np.ndarray]], float]

TRIM_FRACTION = 0.2  # trimmed mean: cut this fraction of values at each end, per coordinate
SHAPLEY_DROP_RATIO = 0.1  # validation_shapley: leave out values below −this × the round's starting loss


@dataclass(frozen=True)
class Combined:
    """A rule's result: the aggregate (None for no updates), what it left out, and the updates it used."""

    arrays: Arrays | None
    excluded: dict[int, str] = field(default_factory=dict)  # update index -> why it was left out
    used: list[int] = field(default_factory=list)  # update indices whose metrics the round reports


def weighted_average(updates: Sequence[Sequence[np.ndarray]], weights: Sequence[float]) -> Arrays:
    """FedAvg of ``updates`` with mixing coefficients ``w_i / Σ w`` (equal when all weights are 0).

    Each array keeps its dtype (float64 accumulation); shapes are the updates' shapes.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w if w.sum() > 0 else np.ones(len(updates))
    p = w / w.sum()
    out = []
    for k in range(len(updates[0])):
        acc = sum(pi * np.asarray(u[k], dtype=np.float64) for pi, u in zip(p, updates, strict=True))
        out.append(np.asarray(acc).astype(np.asarray(updates[0][k]).dtype))
    return out


def _subset(updates, weights, keep: Sequence[int], excluded: dict[int, str]) -> Combined:
    keep = sorted(keep)
    chosen = [updates[i] for i in keep]
    return Combined(weighted_average(chosen, [weights[i] for i in keep]), excluded, keep)


def fedavg(updates, weights, *, loss: Loss | None = None, scores=None) -> Combined:
    """FedAvg (McMahan et al. 2017): the weighted average of every update."""
    if not updates:
        return Combined(None)
    return _subset(updates, weights, range(len(updates)), {})


def multikrum(updates, weights, *, loss: Loss | None = None, scores=None) -> Combined:
    """Multi-Krum (Blanchard et al. 2017): with ``f = ⌊(n − 3) / 2⌋`` assumed attackers, score each update by
    the summed squared distance to its ``n − f − 2`` nearest others and average (FedAvg) the ``n − f`` best."""
    if not updates:
        return Combined(None)
    n = len(updates)
    f = max(0, (n - 3) // 2)
    flat = np.stack([np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in u]) for u in updates])
    sq = (flat**2).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0.0)
    closest = max(1, n - f - 2)
    scores_k = np.array([np.sort(np.delete(dist[i], i))[:closest].sum() if n > 1 else 0.0 for i in range(n)])
    keep = np.argsort(scores_k, kind="stable")[: n - f].tolist()
    threshold = float(scores_k[keep].max()) if keep else 0.0
    excluded = {
        i: f"multikrum: Krum score {scores_k[i]:.4g} above the {n - f} kept (threshold {threshold:.4g})"
        for i in sorted(set(range(n)) - set(keep))
    }
    return _subset(updates, weights, keep, excluded)


def _coordinatewise(updates, reduce: Callable[[np.ndarray], np.ndarray]) -> Combined:
    if not updates:
        return Combined(None)
    out = []
    for k in range(len(updates[0])):
        stack = np.stack([np.asarray(u[k]) for u in updates])
        out.append(np.asarray(reduce(stack), dtype=stack.dtype))
    return Combined(out, {}, list(range(len(updates))))


def trim_mean(stack: np.ndarray, fraction: float) -> np.ndarray:
    """Mean over axis 0 after cutting ``⌊fraction · n⌋`` values at each end, per coordinate (as Flower's)."""
    n = stack.shape[0]
    cut = int(fraction * n)
    if cut * 2 >= n:
        raise ValueError(f"trimming {fraction} at each end of {n} values leaves nothing")
    ordered = np.partition(stack, (cut, n - cut - 1), axis=0)
    return np.mean(ordered[cut : n - cut], axis=0)


def trimmed_mean(updates, weights, *, loss: Loss | None = None, scores=None) -> Combined:
    """Coordinate-wise trimmed mean (Yin et al. 2018), cutting ``TRIM_FRACTION`` at each end."""
    return _coordinatewise(updates, lambda stack: trim_mean(stack, TRIM_FRACTION))


def median(updates, weights, *, loss: Loss | None = None, scores=None) -> Combined:
    """Coordinate-wise median (Yin et al. 2018)."""
    return _coordinatewise(updates, lambda stack: np.median(stack, axis=0))


def validation_loo(updates, weights, *, loss: Loss | None = None, scores=None) -> Combined:
    """Validation-set filter: leave one out on the round's FedAvg aggregate.

    The aggregate's ``loss`` is computed with all updates and without each one; an update whose removal
    lowers it is left out and the rest are averaged (FedAvg). ``n + 1`` evaluations. Without a validation
    set, or under 3 updates, it is FedAvg; it never leaves a round empty.
    """
    n = len(updates)
    if not n or loss is None or n < 3:
        return fedavg(updates, weights)

    def without(i: int | None) -> float:
        keep = [j for j in range(n) if j != i]
        return float(loss(weighted_average([updates[j] for j in keep], [weights[j] for j in keep])))

    base = without(None)
    excluded = {}
    for i in range(n):
        delta = without(i) - base  # > 0: the aggregate is worse without this update
        if delta < 0:
            excluded[i] = (
                f"validation_loo: the aggregate's validation loss is {-delta:.4g} lower without this update"
            )
    if len(excluded) == n:
        return fedavg(updates, weights)
    return _subset(updates, weights, [i for i in range(n) if i not in excluded], excluded)


def validation_shapley(updates, weights, *, loss: Loss | None = None, scores=None) -> Combined:
    """Validation-set Shapley filter: leave out the updates whose round Shapley value is clearly negative.

    ``scores``: each update's Shapley value in the round's game (utility = minus the validation loss of a
    coalition's FedAvg, ``training.flower_app.valuation``): negative means the other updates do better
    without it, averaged over every coalition (unlike leave-one-out, it does not hinge on one aggregate).
    An update is left out when its value is below ``−SHAPLEY_DROP_RATIO × L₀``, ``L₀`` the validation loss
    of the model the round started from, recovered from efficiency (``Σφ = L₀ − loss(FedAvg of all)``):
    small negative values are the noise of a small validation set on honest updates whose data differ
    from it. The rest are averaged (FedAvg). Without scores it is FedAvg; it never leaves a round empty.
    """
    n = len(updates)
    if not n or scores is None:
        return fedavg(updates, weights)
    phi = np.asarray(scores, dtype=np.float64)
    threshold = 0.0
    if loss is not None:
        start = float(loss(weighted_average(updates, weights))) + float(phi.sum())
        threshold = -SHAPLEY_DROP_RATIO * max(start, 0.0)
    excluded = {
        i: f"validation_shapley: Shapley value {p:.4g} on the validation loss is below {threshold:.4g}"
        for i, p in enumerate(phi.tolist())
        if p < threshold
    }
    if len(excluded) == n:
        return fedavg(updates, weights)
    return _subset(updates, weights, [i for i in range(n) if i not in excluded], excluded)
