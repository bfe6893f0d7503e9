"""Contribution scorers: how much each accepted update of a round is worth (the registry).

Django-free. A scorer is ``score(server_round, accepted, rejected, global_before, update_arrays, central_eval)
-> {node_id: score}`` (rejected updates always score 0; the follower scales scores by 1e6 into the uint256 of
each round's Merkle leaf). Scorers are named by dotted path so listing them never imports torch. Adding a
scorer: one entry in :data:`SCORERS`. ``TrainingConfig.ready()`` registers the entries in
``tasks.catalog.scorers``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.catalog import Entry


@dataclass(frozen=True)
class Scorer:
    entry: Entry
    score: str  # "module:function"

    @property
    def name(self) -> str:
        return self.entry.name

    def load(self) -> Callable[..., dict[int, float]]:
        module, _, attr = self.score.partition(":")
        return getattr(importlib.import_module(module), attr)


def accepted_count(
    server_round: int,
    accepted: Sequence[Any],
    rejected: Sequence[Any],
    global_before: Sequence[Any],
    update_arrays: Mapping[int, Sequence[Any]],
    central_eval: Callable[..., dict[str, float]] | None,
) -> dict[int, float]:
    """1 for each accepted update, 0 for rejected ones (the placeholder until Shapley values land)."""
    return {u.node_id: 1.0 for u in accepted}


SCORERS: dict[str, Scorer] = {
    s.name: s
    for s in (
        Scorer(
            Entry("accepted", "Accepted updates", "Every accepted update scores 1.", default=True),
            f"{__name__}:accepted_count",
        ),
    )
}


def scorer(name: str) -> Scorer:
    """The scorer registered as ``name`` ("" = the default); ``KeyError`` with the known names otherwise."""
    if not name:
        name = next(n for n, s in SCORERS.items() if s.entry.default)
    try:
        return SCORERS[name]
    except KeyError:
        raise KeyError(f"unknown scorer {name!r}; known: {', '.join(SCORERS)}") from None
