"""Aggregation rules: what a round's global model is made of (the registry; the ServerApp applies it).

Django-free. Each :class:`AggregationRule` names an aggregation function ``aggregate(strategy, server_round,
kept_replies) -> (ArrayRecord | None, MetricRecord | None)`` by dotted path, so listing the rules (web
process, forms) never imports flwr or torch. Adding a rule: implement the function (e.g. in
``training/flower_app/rules.py``), add one entry to :data:`RULES`. ``TrainingConfig.ready()`` registers the
entries in ``tasks.catalog.aggregation_rules`` for model choices, forms and services.

Robust rules follow Flower's strategies (Blanchard et al. 2017, Multi-Krum; Yin et al. 2018, trimmed mean
and coordinate-wise median) and need at least 3 participants per round.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks.catalog import Entry


@dataclass(frozen=True)
class AggregationRule:
    entry: Entry
    aggregate: str  # "module:function"; see the module docstring for its signature
    available: bool = True  # False: listed, but a task using it cannot start training yet

    @property
    def name(self) -> str:
        return self.entry.name

    def load(self) -> Callable[..., Any]:
        module, _, attr = self.aggregate.partition(":")
        return getattr(importlib.import_module(module), attr)


_RULES_MODULE = "training.flower_app.rules"

RULES: dict[str, AggregationRule] = {
    r.name: r
    for r in (
        AggregationRule(
            Entry(
                "fedavg",
                "FedAvg",
                "Weighted average of the accepted updates (McMahan et al. 2017).",
                default=True,
            ),
            f"{_RULES_MODULE}:fedavg",
        ),
        AggregationRule(
            Entry(
                "multikrum",
                "Multi-Krum",
                "Averages the updates closest to their neighbours.",
                min_participants=3,
            ),
            f"{_RULES_MODULE}:multikrum",
        ),
        AggregationRule(
            Entry(
                "trimmed_mean",
                "Trimmed mean",
                "Coordinate-wise mean without the extremes.",
                min_participants=3,
            ),
            f"{_RULES_MODULE}:trimmed_mean",
        ),
        AggregationRule(
            Entry("median", "Median", "Coordinate-wise median of the updates.", min_participants=3),
            f"{_RULES_MODULE}:median",
        ),
        AggregationRule(
            Entry(
                "validation_loo",
                "Validation leave-one-out",
                "Leaves out an update when the aggregate's loss on the committed validation set is lower "
                "without it, then averages the rest (FedAvg).",
                min_participants=3,
            ),
            f"{_RULES_MODULE}:validation_loo",
        ),
    )
}


def rule(name: str) -> AggregationRule:
    """The rule registered as ``name``; ``KeyError`` with the known names otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"unknown aggregation rule {name!r}; known: {', '.join(RULES)}") from None
