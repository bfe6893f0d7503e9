"""Detection signals: each attack kind raises its signal; honest updates raise none that counts."""

import numpy as np

from training import defence


def _round(seed=0):
    rng = np.random.default_rng(seed)
    g = [rng.normal(size=(8, 4)), rng.normal(size=4)]
    direction = [rng.normal(size=(8, 4)), rng.normal(size=4)]

    def honest(i):
        return [a + 0.1 * d + 0.03 * rng.normal(size=d.shape) for a, d in zip(g, direction, strict=True)]

    updates = {i: honest(i) for i in range(6)}
    updates[10] = [a - 0.1 * d for a, d in zip(g, direction, strict=True)]  # sign flip / opposed
    updates[11] = [a.copy() for a in g]  # free rider: the global model back
    updates[12] = [a + 1.0 * d for a, d in zip(g, direction, strict=True)]  # scaling ×10
    updates[13] = [a.copy() for a in updates[0]]  # a copy of participant 0's update
    return g, updates


def _signals(flags, node, counting_only=True):
    return {f["signal"] for f in flags[node] if f["counts"] or not counting_only}


def test_each_attack_raises_its_signal_and_honest_updates_stay_clean():
    g, updates = _round()
    flags = defence.detect(g, updates, scores={10: -0.2, 11: -0.01, 12: 0.05})
    assert all(_signals(flags, i) == set() for i in range(1, 6))
    assert {"opposed", "flipped", "negative_contribution"} <= _signals(flags, 10)
    assert "copy_of_global" in _signals(flags, 11)
    # a large update that helps is evidence only when the round has scores; without scores it counts
    assert "norm_outlier" in _signals(flags, 12, counting_only=False) and _signals(flags, 12) == set()
    assert "norm_outlier" in _signals(defence.detect(g, updates), 12)
    assert "copy_of_other" in _signals(flags, 13, counting_only=False)
    assert _signals(flags, 13) == set()  # a copy is evidence, not a verdict (the original looks the same)
    flag = next(f for f in flags[12] if f["signal"] == "norm_outlier")
    assert not flag["counts"]
    assert flag["threshold"] == defence.NORM_OUTLIER_RATIO and flag["value"] > defence.NORM_OUTLIER_RATIO
    assert "median" in flag["detail"]


def test_honest_rounds_over_many_seeds_raise_nothing_that_counts():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        g = [rng.normal(size=(16, 8))]
        direction = rng.normal(size=(16, 8))
        # non-identical honest participants: a shared direction plus their own (non-IID-like) component
        updates = {i: [g[0] + 0.1 * direction + 0.08 * rng.normal(size=(16, 8))] for i in range(10)}
        flags = defence.detect(g, updates, scores={i: 0.01 for i in range(10)})
        assert all(_signals(flags, i) == set() for i in range(10)), seed


def test_two_updates_only_raise_no_relative_signal():
    g = [np.zeros(3)]
    flags = defence.detect(g, {1: [np.ones(3)], 2: [np.full(3, 50.0)]})
    assert flags == {1: [], 2: []}


def test_opposed_and_small_negative_contributions_are_evidence_only():
    # given an honest non-IID-like update pointing away from the median but helping (positive score),
    # one with a small negative score against a starting loss of 1.0, one below the counting threshold and
    # one below the decisive threshold
    g, updates = _round()
    harmful = -1.5 * defence.HARMFUL_LOSS_RATIO
    scores = {i: 0.01 for i in updates} | {
        10: 0.02,
        1: -0.05 * defence.HARMFUL_LOSS_RATIO,
        2: -2.0,
        3: harmful,
    }
    flags = defence.detect(g, updates, scores=scores, baseline_loss=1.0)
    # then neither of the first two counts (nor is the helping one "flipped"); the others do
    assert "opposed" in _signals(flags, 10, counting_only=False) and _signals(flags, 10) == set()
    assert "negative_contribution" in _signals(flags, 1, counting_only=False) and _signals(flags, 1) == set()
    # below the counting threshold but aligned with the median update: evidence only (no corroboration) ...
    assert "negative_contribution" in _signals(flags, 3, counting_only=False) and _signals(flags, 3) == set()
    assert next(f for f in flags[3])["threshold"] == -defence.HARMFUL_LOSS_RATIO
    # ... while the same score from the opposed update counts
    opposed = defence.detect(g, updates, scores=scores | {10: harmful}, baseline_loss=1.0)
    assert "negative_contribution" in _signals(opposed, 10)
    assert _signals(flags, 2) == {"harmful_contribution"}
    assert next(f for f in flags[2])["threshold"] == -defence.DECISIVE_LOSS_RATIO
    assert {"opposed", "flipped"} <= _signals(defence.detect(g, updates), 10)  # without scores: geometry
    assert {"opposed", "flipped"} <= _signals(
        defence.detect(g, updates, scores=scores | {10: -0.1}, baseline_loss=1.0), 10
    )


def test_opposed_counts_only_when_most_coordinates_disagree_too():
    # given a non-IID-like update: slightly against the median direction (cosine < 0), negative score, but
    # most of its coordinates agree in sign with the median update (its own labels' weights differ)
    rng = np.random.default_rng(3)
    g = [np.zeros(200)]
    shared = rng.normal(size=200)
    updates = {i: [shared + 0.3 * rng.normal(size=200)] for i in range(8)}
    skew = shared.copy()
    skew[:20] = -12 * shared[:20]  # a few coordinates (its classes' weights) pulled hard the other way
    updates[8] = [skew]
    scores = {i: 0.01 for i in range(8)} | {8: -0.2}
    flags = defence.detect(g, updates, scores=scores, baseline_loss=1.0)
    opposed = next(f for f in flags[8] if f["signal"] == "opposed")
    # then it is evidence (with the agreement in the detail), not a count against the participant
    assert opposed["value"] <= 0 and not opposed["counts"] and "agree" in opposed["detail"]
    assert _signals(flags, 8) == set()


def test_judge_rounds_counts_flagged_answered_rounds_only():
    hit = {"signal": "norm_outlier", "counts": True}
    info = {"signal": "copy_of_other", "counts": False}
    records = [
        {"round": 1, "accepted": True, "reason": "", "flags": [hit]},
        {"round": 2, "accepted": False, "reason": "invalid: NaN"},
        {"round": 3, "accepted": True, "reason": "", "flags": [info]},
        {"round": 4, "accepted": False, "reason": "no reply: timed out"},
    ]
    malicious, evidence = defence.judge_rounds(records, rounds=4)
    assert malicious and evidence["rounds_answered"] == 3 and evidence["rounds_flagged"] == 2
    assert evidence["rounds_decisive"] == 0
    assert [e["round"] for e in evidence["rounds"]] == [1, 2] and evidence["rounds"][1][
        "rejected"
    ] == "invalid: NaN"
    assert not defence.judge_rounds(records[:1] + records[2:], rounds=4)[0]  # 1 of 2 answered, but < 2 rounds
    assert not defence.judge_rounds(records, rounds=4, share=0.75)[0]


def test_two_decisive_rounds_are_malicious_whatever_the_share():
    flipped = {"signal": "flipped", "counts": True}
    weak = {"signal": "negative_contribution", "counts": True}
    clean = [{"round": r, "accepted": True, "reason": "", "flags": []} for r in range(3, 21)]
    # given 2 of 20 rounds flagged (10%, under the 50% share)
    decisive = [{"round": r, "accepted": True, "reason": "", "flags": [flipped]} for r in (1, 2)]
    ordinary = [{"round": r, "accepted": True, "reason": "", "flags": [weak]} for r in (1, 2)]
    # then two decisive rounds make a verdict, two ordinary ones or one decisive one do not
    malicious, evidence = defence.judge_rounds(decisive + clean, rounds=20)
    assert malicious and evidence["rounds_decisive"] == 2 and evidence["rounds_flagged"] == 2
    assert not defence.judge_rounds(ordinary + clean, rounds=20)[0]
    assert not defence.judge_rounds(decisive[:1] + ordinary[1:] + clean, rounds=20)[0]
