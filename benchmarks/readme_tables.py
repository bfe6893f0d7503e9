"""Rewrite README.md's benchmark tables from benchmarks/results/*.json.

Each table sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in README.md, NAME one of
``gas`` (gas.json), ``web`` (web.json), ``fl_overhead`` (fl_overhead.json) and ``contribution``
(contribution.json); the robustness tables are rewritten by ``benchmarks/robustness.py --readme``. A
section whose JSON is missing is left as it is. Only the published (full) results are read: quick runs
write ``*-quick.json`` and leave the tables alone.

    .venv/bin/python benchmarks/readme_tables.py           # rewrite README.md
    .venv/bin/python benchmarks/readme_tables.py --check   # exit 1 if README.md is not up to date

Every renderer takes the parsed JSON (a dict) and returns Markdown without a trailing newline; a JSON
without the fields a renderer reads raises KeyError.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"


class MarkersMissing(ValueError):
    """README.md has no ``<!-- NAME:start -->`` … ``<!-- NAME:end -->`` pair for a section."""


def markers(name: str) -> tuple[str, str]:
    """The start and end comment lines of section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with everything between section ``name``'s markers replaced by ``body``.

    Raises MarkersMissing when either marker is absent or the end comes before the start.
    """
    start, end = markers(name)
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise MarkersMissing(f"README has no {start} … {end} section")
    return f"{text[: i + len(start)]}\n{body}\n{text[j:]}"


# --- renderers ----------------------------------------------------------------------------------------


def render_gas(data: dict) -> str:
    """The table benchmarks/gas.py built (receipt gasUsed per function and N), as stored in gas.json."""
    return data["table_markdown"].rstrip("\n")


WEB_LABELS = {
    "home": "home `/`",
    "browse": "browse `/marketplace/?q=…&model_kind=…&licence=on&sort=…`",
    "detail": "detail `/marketplace/models/<id>/`",
    "api_list": "API list `/api/v1/models/`",
}


def _num(value: float) -> str:
    """1234.0 → '1,234'; 11.1 → '11.1' (whole numbers without decimals, thousands separated)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _row(cells: list[str]) -> str:
    """A Markdown table row; an empty cell is written ``| |``."""
    return ("| " + " | ".join(cells) + " |").replace("|  |", "| |")


def render_web(data: dict) -> str:
    """Per endpoint of web.json: requests, failures, p50/p95/p99 latency (ms), req/s and the p95 target."""
    rows = [
        "| endpoint | requests | failures | p50 (ms) | p95 (ms) | p99 (ms) | req/s | p95 target (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    results, targets = data["results"], data.get("targets_p95_ms", {})
    order = [k for k in WEB_LABELS if k in results] + [k for k in results if k not in WEB_LABELS]
    for key in order:
        r = results[key]
        label = WEB_LABELS.get(key, f"{key} `{r.get('path', '')}`")
        target = ""
        if key in targets:
            met = "met" if r["p95_ms"] <= targets[key] else "not met"
            target = f"≤ {_num(targets[key])} ({met})"
        cells = [r["requests"], r["failures"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["rps"]]
        rows.append(_row([label, *(_num(c) for c in cells), target]))
    return "\n".join(rows)


FL_CONFIGS = {
    "a_plain_flower": ("(a) plain Flower", ""),
    "b_platform_subprocess": ("(b) platform, subprocess isolation", "≤ 1.15"),
    "c_platform_warm": ("(c) platform, warm client start", "≤ 0.35"),
}


def render_fl_overhead(data: dict) -> str:
    """Wall time, ratio to plain Flower, target, final and per-round accuracy of each configuration."""
    rows = [
        "| configuration | wall time (s) | ratio to (a) | target | final accuracy | accuracy per round |",
        "|---|---:|---:|---:|---:|---|",
    ]
    results = data["results"]
    first = None
    for key, r in results.items():
        label, target = FL_CONFIGS.get(key, (key, ""))
        ratio = "" if r.get("ratio_to_plain") is None else f"{r['ratio_to_plain']:.2f}"
        acc = r["accuracy"]
        per_round = "same" if first is not None and acc == first else ", ".join(f"{a:.4f}" for a in acc)
        first = acc if first is None else first
        rows.append(_row([label, f"{r['wall_s']:.1f}", ratio, target, f"{acc[-1]:.4f}", per_round]))
    return "\n".join(rows)


CONTRIBUTION_SETS = {
    "mixed": "mixed: unequal sizes, label noise, duplicate data, free rider, label flipper",
    "iid": "IID",
    "high_lr": "high learning rate (10×, large updates)",
}


def _err(value: float) -> str:
    """Share errors in percentage points: three decimals below 1, two above."""
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def render_contribution(data: dict) -> str:
    """The estimator against exact Shapley values per participant set, then the n = 50 and n = 100 line."""
    rows = [
        "| set | evaluations (exact) | mean round error | worst round | whole run | Spearman | s/round (exact) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in data["summary"]:
        rows.append(
            f"| {CONTRIBUTION_SETS.get(s['set'], s['set'])} | {s['evaluations']:,.0f} ({s['exact_evaluations']:,}) "
            f"| {_err(s['mean_round_error'])} | {_err(s['worst_round_error'])} | {_err(s['whole_run_error'])} "
            f"| {s['spearman']:.4f} | {s['time_s']:.2f} ({s['exact_time_s']:.2f}) |"
        )
    lines = []
    for b in data.get("large_n", []):
        line = f"n = {b['n']}: {b['evaluations']} evaluations, {b['time_s']:.2f} s per round"
        if "max_share_error" in b:
            line += (
                f", against a {b['reference_permutations']:,}-permutation Monte-Carlo reference "
                f"({b['reference_time_s']:.0f} s): mean share error {b['mean_share_error']:.3f} points, "
                f"max {b['max_share_error']:.3f}, Spearman {b['spearman']:.3f}"
            )
        lines.append(line + ".")
    args = data.get("args", {})
    head = f"{args['seeds']} seed(s) × {args['rounds']} rounds per set.\n\n" if "seeds" in args else ""
    return head + "\n".join(rows) + ("\n\n" + " ".join(lines) if lines else "")


RENDERERS: dict[str, Callable[[dict], str]] = {
    "gas": render_gas,
    "web": render_web,
    "fl_overhead": render_fl_overhead,
    "contribution": render_contribution,
}


def rewrite(text: str, results_dir: Path = RESULTS) -> tuple[str, list[str]]:
    """``text`` (a README) with every section whose ``<name>.json`` exists re-rendered; and those names."""
    done = []
    for name, render in RENDERERS.items():
        path = results_dir / f"{name}.json"
        if path.exists():
            text = replace_section(text, name, render(json.loads(path.read_text())))
            done.append(name)
    return text, done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if README.md would change")
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    old = args.readme.read_text()
    new, done = rewrite(old, args.results)
    if args.check:
        print("README tables up to date" if new == old else "README tables differ from benchmarks/results")
        return 0 if new == old else 1
    if new != old:
        args.readme.write_text(new)
    print(f"{'rewrote' if new != old else 'unchanged'}: {', '.join(done)} in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
