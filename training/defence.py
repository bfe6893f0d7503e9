"""Aggregation rules: what a round's global model is made of (the registry; the ServerApp applies it).

Django-free. Each :class:`AggregationRule` names an aggregation function ``aggregate(strategy, server_round,
kept_replies) -> (ArrayRecord | None, MetricRecord | None)`` by dotted path, so listing the rules (web
process, forms) never imports flwr or torch, and the pure numpy rule it applies (``combine``, by default
``training.aggregation:<name>``: list of update arrays + weights in, aggregate and exclusions out), which
the benchmarks call without Flower. Adding a rule: implement the pure function in
``training/aggregation.py`` and its Flower wrapper in ``training/flower_app/rules.py``, add one entry to
:data:`RULES`. ``TrainingConfig.ready()`` registers the
entries in ``tasks.catalog.aggregation_rules`` for model choices, forms and services.

Robust rules follow Flower's strategies (Blanchard et al. 2017, Multi-Krum; Yin et al. 2018, trimmed mean
and coordinate-wise median) and need at least 3 participants per round.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks.catalog import Entry


@dataclass(frozen=True)
class AggregationRule:
    entry: Entry
    aggregate: str  # "module:function"; see the module docstring for its signature
    combine: str = ""  # "module:function" of the pure numpy rule it applies (training.aggregation)
    available: bool = True  # False: listed, but a task using it cannot start training yet

    @property
    def name(self) -> str:
        return self.entry.name

    def load(self) -> Callable[..., Any]:
        return pkgutil.resolve_name(self.aggregate)

    def load_combine(self) -> Callable[..., Any]:
        """The pure rule ``combine(updates, weights, *, loss=None, scores=None) -> Combined``."""
        return pkgutil.resolve_name(self.combine or f"{_PURE_MODULE}:{self.name}")


_RULES_MODULE = "training.flower_app.rules"
_PURE_MODULE = "training.aggregation"

RULES: dict[str, AggregationRule] = {
    r.name: r
    for r in (
        AggregationRule(
            Entry(
                "fedavg",
                "FedAvg",
                "Weighted average of the accepted updates (McMahan et al. 2017).",
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
                default=True,  # benchmarks/robustness.py: clean as FedAvg, far better under attack
            ),
            f"{_RULES_MODULE}:validation_loo",
        ),
        AggregationRule(
            Entry(
                "validation_shapley",
                "Validation Shapley",
                "Leaves out an update whose contribution score in the round is negative (with the default "
                "scorer: its Shapley value on the committed validation set's loss, over every coalition of "
                "the round's updates), then averages the rest (FedAvg).",
                min_participants=3,
            ),
            f"{_RULES_MODULE}:validation_shapley",
        ),
    )
}


def rule(name: str) -> AggregationRule:
    """The rule registered as ``name``; ``KeyError`` with the known names otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"unknown aggregation rule {name!r}; known: {', '.join(RULES)}") from None


# --- detection signals: what may count against a participant ----------------------------------------------
#
# Kept apart from the aggregation rules: a rule may leave an honest update out of one round's aggregate
# (that is about the model), while a signal below is evidence about the person. Only signals with
# ``counts=True`` enter the verdict (training.verdicts); all are stored with the value and the threshold.

NORM_OUTLIER_RATIO = 4.0  # ‖δ_i‖ above this many times the round's median update norm
COPY_OF_GLOBAL_RATIO = 1e-3  # ‖δ_i‖ below this fraction of the median norm: the global model sent back
COPY_OF_OTHER_RATIO = 1e-6  # ‖θ_i − θ_j‖ below this fraction of the median norm: another's update re-sent
OPPOSED_COSINE = 0.0  # cosine to the coordinate-wise median update at or below this: pulls the other way
OPPOSED_SIGN_AGREEMENT = 0.55  # with scores, "opposed" counts only below this sign agreement (see detect)
OPPOSED_LOSS_RATIO = 0.05  # ... and with a contribution below −this × the round's starting validation loss
FLIPPED_SIGN_AGREEMENT = 0.45  # sign agreement with the median update below this: decisive (sign flip)
FLIPPED_MIN_UPDATES = 5  # the median of fewer updates is too noisy a reference for a decisive signal
HARMFUL_LOSS_RATIO = 0.5  # a contribution below −this × the round's starting validation loss counts
DECISIVE_LOSS_RATIO = 1.5  # ... below −this × the starting loss: "harmful_contribution", decisive
DECISIVE_SIGNALS = frozenset({"flipped", "harmful_contribution"})  # see judge_rounds


def detect(
    global_arrays: list,
    updates: dict[int, list],
    scores: dict[int, float] | None = None,
    baseline_loss: float | None = None,
) -> dict[int, list[dict]]:
    """Per accepted update (node id → its arrays), the signals raised against it in one round.

    ``global_arrays``: the model the round started from; ``scores``: the round's contribution scores
    (Shapley values on the validation loss); ``baseline_loss``: the validation loss of the model the round
    started from. Returns ``{node_id: [{"signal", "value", "threshold", "counts", "detail"}]}`` (an empty
    list = clean). Signals, measured against the coordinate-wise median update (a robust reference):

    * ``norm_outlier`` (norm above 4× the median norm) and ``opposed`` (cosine at or below 0) count alone
      only without scores. With scores, a large update counts through its contribution only, and an
      opposed one only when its contribution is below ``−OPPOSED_LOSS_RATIO × baseline_loss`` (below 0
      without a baseline) *and* fewer than 55% of its coordinates agree in sign with the median update: honest non-IID updates point away from the median, grow when a rule
      keeps leaving them out, and make a balanced validation loss slightly worse, round after round.
    * ``flipped``: below 45% sign agreement with the median update (≥ 5 updates; with scores, and a negative
      contribution): most coordinates pulled the other way, which no honest update did in
      benchmarks/robustness.py (honest minimum 0.48 on Dirichlet α = 0.3 data); decisive (see judge_rounds).
    * ``copy_of_global`` (free rider) counts; ``copy_of_other`` is evidence only (the original and the
      copy are indistinguishable).
    * ``negative_contribution``: counts below ``−HARMFUL_LOSS_RATIO × baseline_loss`` (any negative value
      without a baseline) when the geometry corroborates it (opposed, under 55% sign agreement or a norm
      outlier): an honest skewed update aligned with the median can cost a converged model's validation
      loss its whole size; ``harmful_contribution`` instead below ``−DECISIVE_LOSS_RATIO × baseline_loss``
      (decisive). Small negative values are what a small validation set says of honest updates whose data
      differ from it.
    """
    round_ = _RoundGeometry(global_arrays, updates)
    out = {}
    for n in round_.nodes:
        score = None if scores is None else float(scores.get(n, 0.0))
        agreement = round_.sign_agreement(n)
        harm = 0.0 if baseline_loss is None else -OPPOSED_LOSS_RATIO * float(baseline_loss)
        opposed_counts = score is None or (
            score < min(harm, 0.0) and agreement is not None and agreement < OPPOSED_SIGN_AGREEMENT
        )
        out[n] = [
            *round_.norm_signals(n, outlier_counts=score is None),
            *round_.direction_signals(n, counts=opposed_counts, agreement=agreement),
            *round_.flip_signals(n, agreement if score is None or score < 0 else None),
            *round_.copy_signals(n),
            *_score_signals(n, scores, baseline_loss, corroborated=round_.corroborates(n, agreement)),
        ]
    return out


def _flag(signal: str, value: float, threshold: float, detail: str, counts: bool = True) -> dict:
    return {
        "signal": signal,
        "value": round(float(value), 6),
        "threshold": threshold,
        "counts": counts,
        "detail": detail,
    }


class _RoundGeometry:
    """Update directions ``δ_i = θ_i − θ_global`` of one round, their norms and a robust reference."""

    def __init__(self, global_arrays: list, updates: dict[int, list]):
        import numpy as np

        self.np = np
        self.nodes = sorted(updates)
        g = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in global_arrays])
        self.flat = {
            n: np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in updates[n]])
            for n in self.nodes
        }
        self.deltas = {n: self.flat[n] - g for n in self.nodes}
        self.norms = {n: float(np.linalg.norm(self.deltas[n])) for n in self.nodes}
        self.median_norm = float(np.median(list(self.norms.values()))) if self.nodes else 0.0
        many = len(self.nodes) >= 3
        self.reference = np.median(np.stack(list(self.deltas.values())), axis=0) if many else None
        self.ref_norm = float(np.linalg.norm(self.reference)) if many else 0.0

    def norm_signals(self, n: int, outlier_counts: bool = True) -> list[dict]:
        norm, median = self.norms[n], self.median_norm
        out = []
        if median > 0 and len(self.nodes) >= 3 and norm > NORM_OUTLIER_RATIO * median:
            detail = f"update norm {norm:.4g} is {norm / median:.1f}× the round's median"
            out.append(
                _flag("norm_outlier", norm / median, NORM_OUTLIER_RATIO, detail, counts=outlier_counts)
            )
        if median > 0 and norm < COPY_OF_GLOBAL_RATIO * median:
            detail = "the update is (nearly) the global model it was sent: no training"
            out.append(_flag("copy_of_global", norm / median, COPY_OF_GLOBAL_RATIO, detail))
        return out

    def sign_agreement(self, n: int) -> float | None:
        """Share of the coordinates where ``δ_n`` has the sign of the median update (None: no reference)."""
        if self.reference is None or self.norms[n] == 0:
            return None
        nonzero = self.reference != 0
        if not nonzero.any():
            return None
        same = self.np.sign(self.deltas[n][nonzero]) == self.np.sign(self.reference[nonzero])
        return float(same.mean())

    def corroborates(self, n: int, agreement: float | None) -> bool:
        """Whether the geometry backs a harmful score: opposed, under 55% sign agreement or a norm outlier
        (True without a reference: fewer than 3 updates)."""
        if self.reference is None or self.ref_norm == 0 or agreement is None:
            return True
        cosine = float(self.deltas[n] @ self.reference / (self.norms[n] * self.ref_norm))
        big = self.median_norm > 0 and self.norms[n] > NORM_OUTLIER_RATIO * self.median_norm
        return cosine <= OPPOSED_COSINE or agreement < OPPOSED_SIGN_AGREEMENT or big

    def direction_signals(self, n: int, counts: bool = True, agreement: float | None = None) -> list[dict]:
        if self.reference is None or self.ref_norm == 0 or self.norms[n] == 0:
            return []
        cosine = float(self.deltas[n] @ self.reference / (self.norms[n] * self.ref_norm))
        if cosine > OPPOSED_COSINE:
            return []
        detail = f"cosine {cosine:.3f} to the round's median update"
        if agreement is not None:
            detail += f", {agreement:.0%} of its coordinates agree with it in sign"
        return [_flag("opposed", cosine, OPPOSED_COSINE, detail, counts=counts)]

    def flip_signals(self, n: int, agreement: float | None) -> list[dict]:
        if agreement is None or len(self.nodes) < FLIPPED_MIN_UPDATES or agreement >= FLIPPED_SIGN_AGREEMENT:
            return []
        detail = f"only {agreement:.0%} of its coordinates agree in sign with the round's median update"
        return [_flag("flipped", agreement, FLIPPED_SIGN_AGREEMENT, detail)]

    def copy_signals(self, n: int) -> list[dict]:
        out = []
        for m in self.nodes:
            if m == n or self.median_norm == 0:
                continue
            gap = float(self.np.linalg.norm(self.flat[n] - self.flat[m])) / self.median_norm
            if gap < COPY_OF_OTHER_RATIO:
                detail = f"(nearly) the same update as node {m}"
                out.append(_flag("copy_of_other", gap, COPY_OF_OTHER_RATIO, detail, counts=False))
        return out


def _score_signals(
    n: int, scores: dict[int, float] | None, baseline_loss: float | None, corroborated: bool = True
) -> list[dict]:
    if scores is None or scores.get(n, 0.0) >= 0:
        return []
    score = float(scores[n])
    detail = f"contribution {score:.4g} in this round: the others do better without it"
    if baseline_loss is None:
        return [_flag("negative_contribution", score, 0.0, detail)]
    decisive = -DECISIVE_LOSS_RATIO * float(baseline_loss)
    if score < decisive:
        detail += f" (below {decisive:.4g}, {DECISIVE_LOSS_RATIO:g} × the starting loss {baseline_loss:.4g})"
        return [_flag("harmful_contribution", score, round(decisive, 6), detail)]
    threshold = -HARMFUL_LOSS_RATIO * float(baseline_loss)
    detail += (
        f" (counts below {threshold:.4g}, {HARMFUL_LOSS_RATIO:g} × the starting loss {baseline_loss:.4g})"
    )
    if not corroborated:
        detail += "; its direction agrees with the round's median update, so it does not count"
    counts = score < threshold and corroborated
    return [_flag("negative_contribution", score, round(threshold, 6), detail, counts=counts)]


# --- verdicts: a participant judged from its rounds ---------------------------------------------------------

NO_REPLY = "no reply"  # reason prefix of a round the participant did not answer (not evidence)
VERDICT_ROUND_SHARE = 0.5  # default of settings.TRAINING_VERDICT_ROUND_SHARE


def round_evidence(record: dict) -> dict | None:
    """What counts against a participant in one round (None: nothing, or it did not answer).

    ``record``: ``{"round", "update_sha256", "accepted", "reason", "flags"}`` (``flags`` as returned by
    :func:`detect`). A rejected update counts (not a missed reply); so does any flag with ``counts``.
    """
    if str(record.get("reason") or "").startswith(NO_REPLY):
        return None
    base = {"round": record["round"], "update_sha256": record.get("update_sha256", "")}
    if not record.get("accepted"):
        return {**base, "rejected": record.get("reason") or ""}
    counting = [f for f in record.get("flags") or [] if f.get("counts")]
    return {**base, "signals": counting} if counting else None


def judge_rounds(
    records: list[dict], *, rounds: int, share: float = VERDICT_ROUND_SHARE
) -> tuple[bool, dict]:
    """``(malicious, evidence)`` from one participant's round records (see :func:`round_evidence`).

    Malicious when flagged in at least ``share`` of the rounds it answered and in at least ``min(2, rounds)``
    rounds (``rounds``: the task's number of rounds), or when a decisive signal (:data:`DECISIVE_SIGNALS`:
    ``flipped``, ``harmful_contribution``) was raised in at least ``min(2, rounds)`` rounds, whatever the
    share (an attacker whose updates a robust rule kept out of the model looks like the others later on).
    ``evidence``: rounds answered, flagged and decisive, the share, the thresholds and the flagged rounds'
    evidence in round order.
    """
    answered = [r for r in records if not str(r.get("reason") or "").startswith(NO_REPLY)]
    flagged = [e for e in map(round_evidence, answered) if e is not None]
    decisive = [e for e in flagged if any(s.get("signal") in DECISIVE_SIGNALS for s in e.get("signals", []))]
    ratio = len(flagged) / len(answered) if answered else 0.0
    needed = min(2, rounds)
    malicious = (len(flagged) >= needed and ratio >= share) or len(decisive) >= max(needed, 1)
    return malicious, {
        "rounds_answered": len(answered),
        "rounds_flagged": len(flagged),
        "rounds_decisive": len(decisive),
        "share": round(ratio, 4),
        "threshold": share,
        "min_rounds": needed,
        "rounds": sorted(flagged, key=lambda e: e["round"]),
    }
