"""The README table generator: a results JSON in, the expected Markdown out, only between its markers."""

import json

import pytest

from tests.benchmarks.conftest import load_benchmark


@pytest.fixture(scope="module")
def gen():
    return load_benchmark("readme_tables")


WEB = {
    "results": {
        "api_list": {
            "requests": 1510,
            "failures": 2,
            "p50_ms": 370.0,
            "p95_ms": 450.0,
            "p99_ms": 540.0,
            "rps": 10.8,
        },
        "home": {
            "requests": 182,
            "failures": 0,
            "p50_ms": 290.0,
            "p95_ms": 370.0,
            "p99_ms": 410.0,
            "rps": 13.0,
        },
        "search": {
            "path": "/search/",
            "requests": 5,
            "failures": 0,
            "p50_ms": 1.5,
            "p95_ms": 2.0,
            "p99_ms": 3.0,
            "rps": 1.0,
        },
    },
    "targets_p95_ms": {"api_list": 25},
}


def test_web_table_lists_known_endpoints_first_then_others_with_their_path(gen):
    assert gen.render_web(WEB) == (
        "| endpoint | requests | failures | p50 (ms) | p95 (ms) | p99 (ms) | req/s | p95 target (ms) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        "| home `/` | 182 | 0 | 290 | 370 | 410 | 13 | |\n"
        "| API list `/api/v1/models/` | 1,510 | 2 | 370 | 450 | 540 | 10.8 | ≤ 25 (not met) |\n"
        "| search `/search/` | 5 | 0 | 1.5 | 2 | 3 | 1 | |"
    )


def test_fl_overhead_table_says_same_for_accuracy_equal_to_the_first_configuration(gen):
    data = {
        "results": {
            "a_plain_flower": {"wall_s": 151.0, "ratio_to_plain": 1.0, "accuracy": [0.75, 0.93612]},
            "b_platform_subprocess": {"wall_s": 161.25, "ratio_to_plain": 1.07, "accuracy": [0.75, 0.93612]},
            "c_platform_warm": {"wall_s": 32.6, "ratio_to_plain": 0.22, "accuracy": [0.7, 0.9]},
        }
    }
    assert gen.render_fl_overhead(data) == (
        "| configuration | wall time (s) | ratio to (a) | target | final accuracy | accuracy per round |\n"
        "|---|---:|---:|---:|---:|---|\n"
        "| (a) plain Flower | 151.0 | 1.00 | | 0.9361 | 0.7500, 0.9361 |\n"
        "| (b) platform, subprocess isolation | 161.2 | 1.07 | ≤ 1.15 | 0.9361 | same |\n"
        "| (c) platform, warm client start | 32.6 | 0.22 | ≤ 0.35 | 0.9000 | 0.7000, 0.9000 |"
    )


def test_contribution_table_and_large_n_line(gen):
    row = {
        "set": "iid",
        "evaluations": 100.0,
        "exact_evaluations": 1024,
        "mean_round_error": 0.0042,
        "worst_round_error": 12.328,
        "whole_run_error": 0.0028,
        "spearman": 0.88767,
        "time_s": 0.0494,
        "exact_time_s": 0.3535,
    }
    big = [
        {
            "n": 50,
            "evaluations": 100,
            "time_s": 0.286,
            "reference_permutations": 5000,
            "reference_time_s": 110.97,
            "max_share_error": 0.3492,
            "mean_share_error": 0.1096,
            "spearman": 0.98713,
        },
        {"n": 100, "evaluations": 100, "time_s": 0.7758},
    ]
    text = gen.render_contribution({"args": {"seeds": 3, "rounds": 5}, "summary": [row], "large_n": big})
    assert text == (
        "3 seed(s) × 5 rounds per set.\n\n"
        "| set | evaluations (exact) | mean round error | worst round | whole run | Spearman | s/round (exact) |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        "| IID | 100 (1,024) | 0.004 | 12.33 | 0.003 | 0.8877 | 0.05 (0.35) |\n\n"
        "n = 50: 100 evaluations, 0.29 s per round, against a 5,000-permutation Monte-Carlo reference (111 s): "
        "mean share error 0.110 points, max 0.349, Spearman 0.987. n = 100: 100 evaluations, 0.78 s per round."
    )


def test_rewrite_replaces_only_the_marked_sections_whose_json_exists(gen, tmp_path):
    (tmp_path / "web.json").write_text(json.dumps(WEB))
    (tmp_path / "gas.json").write_text(
        json.dumps({"table_markdown": "| f | N=1 |\n|---|---:|\n| claim | 43,899 |\n"})
    )
    readme = (
        "# intro\n<!-- gas:start -->\nold gas\n<!-- gas:end -->\nmiddle\n"
        "<!-- web:start -->\nold web\n<!-- web:end -->\n<!-- contribution:start -->\nkept\n<!-- contribution:end -->\n"
    )
    text, done = gen.rewrite(readme, tmp_path)
    assert done == ["gas", "web"]  # no fl_overhead.json nor contribution.json: those sections are not touched
    assert text.startswith(
        "# intro\n<!-- gas:start -->\n| f | N=1 |\n|---|---:|\n| claim | 43,899 |\n<!-- gas:end -->"
    )
    assert "old web" not in text and gen.render_web(WEB) in text
    assert "middle\n" in text and "<!-- contribution:start -->\nkept\n<!-- contribution:end -->" in text
    assert gen.rewrite(text, tmp_path) == (text, done)  # idempotent


def test_missing_markers_are_an_error_naming_the_section(gen, tmp_path):
    (tmp_path / "web.json").write_text(json.dumps(WEB))
    with pytest.raises(gen.MarkersMissing, match="web:start"):
        gen.rewrite("<!-- web:end -->\n<!-- web:start -->\n", tmp_path)


def test_check_fails_until_the_readme_is_rewritten(gen, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "web.json").write_text(json.dumps(WEB))
    readme = tmp_path / "README.md"
    readme.write_text("<!-- web:start -->\nstale\n<!-- web:end -->\n")
    args = ["--readme", str(readme), "--results", str(results)]
    assert gen.main([*args, "--check"]) == 1 and "stale" in readme.read_text()
    assert gen.main(args) == 0
    assert gen.main([*args, "--check"]) == 0 and "| home `/` | 182 |" in readme.read_text()
