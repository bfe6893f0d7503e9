"""Contribution estimator against exact Shapley values (and a Monte-Carlo reference at n = 50).

Digits MLP, FedAvg rounds of real local training (no Flower processes: the valuation is what is measured).
Participant sets:
  mixed    unequal data sizes, label noise, a duplicate of another's data, a free rider, a label flipper
  iid      ten equal IID partitions (true values nearly equal: share errors are hardest here)
  high_lr  the mixed set with a 10x learning rate (large updates: the Taylor surrogate is far off)
Per set and seed, ``--rounds`` rounds; per round the exact values (2**n evaluations) against
``training.shapley.estimate`` with ``--budget`` evaluations: max share error in percentage points per round
and over the whole run (cumulative values), Spearman rank correlation, utility evaluations, time. Then at
n = 50 the estimator against a ``--reference-permutations`` Monte-Carlo reference, and the time per round
at n = 100. Prints tables and writes benchmarks/results/contribution.json.

    python benchmarks/contribution.py            # ~3-6 min on 2 cores
    python benchmarks/contribution.py --quick    # smaller, for a smoke run: writes contribution-quick.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training import datasets, shapley, zoo  # noqa: E402
from training.flower_app import task  # noqa: E402
from training.flower_app.valuation import RoundGame  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "contribution.json"


def shares(phi: np.ndarray) -> np.ndarray:
    phi = np.maximum(np.asarray(phi, dtype=float), 0.0)
    return 100 * phi / phi.sum() if phi.sum() > 0 else np.zeros_like(phi)


def participants(kind: str, n: int, rng: np.random.Generator, ds) -> list[dict]:
    order = rng.permutation(len(ds.x_train))
    if kind == "iid" or n != 10:
        size = min(len(order) // n, 120)
        return [{"idx": order[i * size : (i + 1) * size]} for i in range(n)]
    sizes = [300, 200, 150, 100, 80, 60, 40, 120, 100, 100]
    starts = np.cumsum([0, *sizes])
    out = [{"idx": order[starts[i] : starts[i] + s]} for i, s in enumerate(sizes)]
    out[6]["noise"] = True
    out[7]["idx"] = out[0]["idx"][:120]  # duplicate of participant 0's data
    out[8]["free_rider"] = True
    out[9]["flip"] = True
    return out


def local_update(p: dict, global_arrays, ds, lr: float, seed: int, rng):
    model = zoo.build_model("mlp", (64,), 10, seed=1)
    zoo.set_arrays(model, global_arrays)
    if p.get("free_rider"):
        return [a.copy() for a in global_arrays]
    x, y = ds.x_train[p["idx"]], ds.y_train[p["idx"]].copy()
    if p.get("noise"):
        y = rng.integers(0, 10, size=len(y))
    if p.get("flip"):
        y = 9 - y
    task.train(model, x, y, epochs=1, batch_size=32, lr=lr, seed=seed)
    return [v.detach().numpy().copy() for v in model.state_dict().values()]


def run_set(kind: str, seed: int, rounds: int, budget: int, ds, val) -> list[dict]:
    rng = np.random.default_rng(seed)
    lr = 0.5 if kind == "high_lr" else 0.05
    people = participants("mixed" if kind == "high_lr" else kind, 10, rng, ds)
    weights = [len(p["idx"]) for p in people]
    model = zoo.build_model("mlp", (64,), 10, seed=seed)
    g = [v.numpy().copy() for v in model.state_dict().values()]
    rows = []
    for rnd in range(rounds):
        ups = [local_update(p, g, ds, lr, seed * 100 + rnd * 10 + i, rng) for i, p in enumerate(people)]
        game = RoundGame(model, g, ups, weights, *val)
        t0 = time.perf_counter()
        exact, exact_evals = shapley.exact(10, game.utility)
        t_exact = time.perf_counter() - t0
        t0 = time.perf_counter()
        est = shapley.estimate(game.utility, game.surrogate(), budget=budget, exact_max_players=0, seed=rnd)
        t_est = time.perf_counter() - t0
        rows.append(
            {
                "set": kind,
                "seed": seed,
                "round": rnd + 1,
                "exact": exact.tolist(),
                "estimate": est.values.tolist(),
                "evaluations": est.evaluations,
                "exact_evaluations": exact_evals,
                "max_share_error": float(np.abs(shares(exact) - shares(est.values)).max()),
                "spearman": float(spearmanr(exact, est.values).statistic),
                "time_s": t_est,
                "exact_time_s": t_exact,
            }
        )
        keep = np.ones(10, dtype=bool)
        keep[np.asarray(exact) < 0] = False  # next global: FedAvg of non-negative contributors
        g = _unflatten(game.theta(keep if keep.any() else np.ones(10, bool)).numpy(), g)
    return rows


def _unflatten(flat: np.ndarray, like) -> list[np.ndarray]:
    out, start = [], 0
    for a in like:
        out.append(flat[start : start + a.size].reshape(a.shape).astype(a.dtype))
        start += a.size
    return out


def large_n(n: int, budget: int, reference_perms: int, ds, val, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    people = participants("iid", n, rng, ds)
    for p in people[: n // 5]:
        p["noise"] = True  # a fifth with noisy labels so values differ
    weights = [len(p["idx"]) for p in people]
    model = zoo.build_model("mlp", (64,), 10, seed=seed)
    g = [v.numpy().copy() for v in model.state_dict().values()]
    ups = [local_update(p, g, ds, 0.05, i, rng) for i, p in enumerate(people)]
    game = RoundGame(model, g, ups, weights, *val)
    t0 = time.perf_counter()
    est = shapley.estimate(game.utility, game.surrogate(), budget=budget, exact_max_players=0, seed=seed)
    t_est = time.perf_counter() - t0
    out = {"n": n, "evaluations": est.evaluations, "time_s": t_est}
    if reference_perms:
        t0 = time.perf_counter()
        ref = _permutation_reference(game, n, reference_perms, rng)
        out.update(
            reference_permutations=reference_perms,
            reference_time_s=time.perf_counter() - t0,
            max_share_error=float(np.abs(shares(ref) - shares(est.values)).max()),
            mean_share_error=float(np.abs(shares(ref) - shares(est.values)).mean()),
            spearman=float(spearmanr(ref, est.values).statistic),
        )
    return out


def _permutation_reference(game: RoundGame, n: int, perms: int, rng) -> np.ndarray:
    phi = np.zeros(n)
    v_empty = game.utility(np.zeros(n, dtype=bool))
    for _ in range(perms // 2):
        perm = rng.permutation(n)
        for order in (perm, perm[::-1]):
            mask = np.zeros(n, dtype=bool)
            before = v_empty
            for i in order:
                mask[i] = True
                after = game.utility(mask)
                phi[i] += after - before
                before = after
    return phi / (2 * (perms // 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=100, help="utility evaluations per round (exact: 1,024)")
    ap.add_argument("--reference-permutations", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="1 seed, 2 rounds, 500 reference permutations")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.reference_permutations = 1, 2, 500
    torch.set_num_threads(1)
    ds = datasets.load_dataset("digits")
    val = (ds.x_test[:200], ds.y_test[:200])
    rows = []
    for kind in ("mixed", "iid", "high_lr"):
        for seed in range(args.seeds):
            rows += run_set(kind, seed, args.rounds, args.budget, ds, val)
    summary = summarise(rows)
    big = [
        large_n(50, args.budget, args.reference_permutations, ds, val),
        large_n(100, args.budget, 0, ds, val),
    ]
    print_tables(summary, big, args)
    # a smoke run keeps the published numbers (and the README table made from them)
    out = RESULTS.with_name("contribution-quick.json") if args.quick else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"args": vars(args), "summary": summary, "large_n": big, "rounds": rows}, indent=1)
    )
    print(f"\nwrote {out.relative_to(ROOT)}")


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for kind in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == kind]
        runs = {}
        for r in mine:
            runs.setdefault(r["seed"], []).append(r)
        whole = [
            float(
                np.abs(
                    shares(np.sum([r["exact"] for r in rs], 0))
                    - shares(np.sum([r["estimate"] for r in rs], 0))
                ).max()
            )
            for rs in runs.values()
        ]
        out.append(
            {
                "set": kind,
                "rounds": len(mine),
                "evaluations": float(np.mean([r["evaluations"] for r in mine])),
                "exact_evaluations": mine[0]["exact_evaluations"],
                "mean_round_error": float(np.mean([r["max_share_error"] for r in mine])),
                "worst_round_error": float(np.max([r["max_share_error"] for r in mine])),
                "whole_run_error": float(np.max(whole)),
                "spearman": float(np.mean([r["spearman"] for r in mine])),
                "time_s": float(np.mean([r["time_s"] for r in mine])),
                "exact_time_s": float(np.mean([r["exact_time_s"] for r in mine])),
            }
        )
    return out


def print_tables(summary: list[dict], big: list[dict], args) -> None:
    print(f"\nn = 10, {args.seeds} seed(s) x {args.rounds} round(s), budget {args.budget} evaluations")
    print(
        "| set | evals (exact) | mean round err (pts) | worst round (pts) | whole run (pts) | Spearman | s/round (exact) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in summary:
        print(
            f"| {s['set']} | {s['evaluations']:.0f} ({s['exact_evaluations']}) | {s['mean_round_error']:.3f} | "
            f"{s['worst_round_error']:.3f} | {s['whole_run_error']:.3f} | {s['spearman']:.4f} | "
            f"{s['time_s']:.3f} ({s['exact_time_s']:.2f}) |"
        )
    for b in big:
        line = f"n = {b['n']}: {b['evaluations']} evaluations, {b['time_s']:.2f} s per round"
        if "max_share_error" in b:
            line += (
                f"; against {b['reference_permutations']} permutations ({b['reference_time_s']:.0f} s): "
                f"max share error {b['max_share_error']:.3f} pts, mean {b['mean_share_error']:.3f}, "
                f"Spearman {b['spearman']:.4f}"
            )
        print(line)


if __name__ == "__main__":
    main()
