"""The robustness benchmark's core on a tiny config (2 rounds, 1 seed, one attack), so it cannot rot."""

import pytest

from tests.benchmarks.conftest import load_benchmark
from training import defence


@pytest.fixture(scope="module")
def robustness():
    return load_benchmark("robustness")


RULES = ["fedavg", "median", "validation_shapley"]


def test_rules_run_and_the_tables_and_targets_come_from_the_rows(robustness, tmp_path):
    # given gaussian noise from 3 of 10 participants, 2 rounds
    rows = robustness.run_one("iid", "gaussian", 0, RULES, 2)
    # then one row per rule, judged by the platform's verdict logic
    assert [r["rule"] for r in rows] == RULES and set(RULES) <= set(defence.RULES)
    for r in rows:
        assert len(r["attackers"]) == 3 and 0 <= r["accuracy"] <= 1
        assert r["true_positives"] == 3 and r["false_positives"] == 0  # noise: norm outlier in both rounds
        assert r["attacker_stake_bps"] == 0  # judged malicious: no stake
    fedavg, median = rows[0], next(r for r in rows if r["rule"] == "median")
    assert median["accuracy"] > fedavg["accuracy"]  # noise ruins the plain average, not the median
    summary = robustness.summarise(rows)
    results = {"args": {"seeds": 1, "rounds": 2}, "summary": summary, "targets": robustness.targets(summary)}
    text = robustness.tables(results)
    assert "| fedavg |" in text and "gaussian" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{robustness.START}\nold\n{robustness.END}\nafter\n")
    robustness.write_readme(results, readme)
    assert "old" not in readme.read_text() and "| median |" in readme.read_text()
    assert readme.read_text().startswith("before") and readme.read_text().endswith("after\n")
