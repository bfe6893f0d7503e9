"""Contribution scorers: how much each accepted update of a round is worth (the registry).

Django-free. A scorer is ``score(server_round, accepted, rejected, global_before, update_arrays, central_eval)
-> {node_id: score}`` (rejected updates always score 0; the follower scales scores by 1e6 into the uint256 of
each round's Merkle leaf). Scorers are named by dotted path so listing them never imports torch. Adding a
scorer: one entry in :data:`SCORERS`. ``TrainingConfig.ready()`` registers the entries in
``tasks.catalog.scorers``.
"""

from __future__ import annotations

import pkgutil
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
        return pkgutil.resolve_name(self.score)


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
            Entry(
                "shapley",
                "Shapley value (validation loss)",
                "Each update's Shapley value in its round: the average improvement of the validation loss it "
                "brings to every coalition of the round's accepted updates (FedAvg of the coalition, no "
                "retraining). Exact up to 10 updates a round, estimated above.",
                default=True,
            ),
            "training.flower_app.valuation:shapley_scorer",
        ),
        Scorer(
            Entry("accepted", "Accepted updates", "Every accepted update scores 1."),
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


TOTAL_SHARES = 10_000  # a model's stake is 10,000 shares (basis points)


def shares_bps(
    contributions: Mapping[str, float],
    *,
    creator: str,
    creator_share_bps: int,
    excluded: frozenset[str] | set[str] = frozenset(),
    total: int = TOTAL_SHARES,
) -> dict[str, int]:
    """Split ``total`` shares: ``creator_share_bps`` to ``creator``, the rest by contribution.

    ``contributions`` maps a participant (wallet) to its cumulative contribution; negative values count as
    0 and ``excluded`` participants (judged malicious) get 0. Largest-remainder rounding (Hamilton's
    method; ties broken by the participant's name), so the result always sums to exactly ``total``. When
    nobody contributed anything positive, the participants' part goes to the creator. Raises
    ``ValueError`` for a share outside 0..total.
    """
    if not 0 <= creator_share_bps <= total:
        raise ValueError(f"creator share {creator_share_bps} bps is outside 0..{total}")
    values = {
        who: max(float(v), 0.0) if who not in excluded else 0.0
        for who, v in contributions.items()
        if who != creator
    }
    pool = total - creator_share_bps
    positive = sum(values.values())
    out = dict.fromkeys(values, 0)
    out[creator] = creator_share_bps
    if positive <= 0 or pool == 0:
        out[creator] += pool
        return out
    exact = {who: pool * v / positive for who, v in values.items()}
    floors = {who: int(e) for who, e in exact.items()}
    left = pool - sum(floors.values())
    order = sorted(exact, key=lambda who: (-(exact[who] - floors[who]), who))
    for who in order[:left]:
        floors[who] += 1
    out.update(floors)
    return out
