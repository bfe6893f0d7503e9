"""Robustness of the aggregation rules, verdicts and stakes under attack (issue 10, "Contribution and defence").

Digits MLP, 10 participants, FedAvg-style rounds of real local training in-process (no Flower processes:
the defence is what is measured). The server side is the platform's own code: every rule of
``training.defence.RULES`` (its pure numpy function, which the ServerApp's Flower wrapper also calls), the
Shapley scorer (``training.flower_app.valuation.shapley_scorer``), the detection signals
(``training.defence.detect``), the verdicts (``training.defence.judge_rounds``, what
``training.services.verdicts`` runs at finalization) and the stake shares (``training.contribution.shares_bps``,
malicious → 0; no creator share here, so shares are of the participants' pool). The attacks are the
ClientApp's (``training.attacks``).

Data: the digits training part minus a fixed, stratified 100-example validation set (the task's committed
validation set: rules and scorer use it), split IID or by label-skewed Dirichlet(α = 0.3); the test part
(360 examples, never seen by the server's rules) gives the final accuracy. Attacks: label flip, Gaussian
noise, sign flip (30% of participants each), scaling ×10, free rider (20% each), and a clean run.

Per (data, attack, rule): final test accuracy mean ± std over seeds; verdict precision and recall per
participant; attackers' share of the stake; honest participants banned. Prints tables and writes
benchmarks/results/robustness.json; ``--readme`` rewrites the README's table from the JSON.

    python benchmarks/robustness.py            # 3 seeds x 20 rounds: 24 min on 2 busy shared cores
    python benchmarks/robustness.py --quick    # 1 seed x 3 rounds, writes robustness-quick.json
    python benchmarks/robustness.py --readme   # only rewrite README.md's table from the JSON
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training import attacks, datasets, defence, zoo  # noqa: E402
from training.contribution import shares_bps  # noqa: E402
from training.flower_app import task  # noqa: E402
from training.flower_app.valuation import shapley_scorer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "robustness.json"
README = ROOT / "README.md"
N = 10
VALIDATION_SIZE = 100
VALIDATION_SEED = 2024
LR, EPOCHS, BATCH = 0.05, 3, 32  # the platform's run-config defaults (lr, local-epochs, batch-size)
DATA = {"iid": ("iid", 0.0), "dirichlet": ("dirichlet", 0.3)}
ATTACKS = {  # name -> (attack spec, fraction of participants)
    "clean": ("", 0.0),
    "label_flip": ("label_flip", 0.3),
    "gaussian": ("gaussian", 0.3),
    "sign_flip": ("sign_flip", 0.3),
    "scaling": ("scaling:factor=10", 0.2),
    "free_rider": ("free_rider", 0.2),
}


def load_data() -> tuple:
    """(ds, train indices for participants, validation (x, y)): 10 validation examples per class."""
    ds = datasets.load_dataset("digits")
    rng = np.random.default_rng(VALIDATION_SEED)
    per_class = VALIDATION_SIZE // ds.num_classes
    val = np.concatenate(
        [rng.permutation(np.flatnonzero(ds.y_train == c))[:per_class] for c in range(ds.num_classes)]
    )
    rest = np.setdiff1d(np.arange(len(ds.y_train)), val)
    return ds, rest, (ds.x_train[val], ds.y_train[val])


def partitions(ds, rest: np.ndarray, scheme: str, alpha: float, seed: int) -> list[np.ndarray]:
    y = ds.y_train[rest]
    if scheme == "iid":
        parts = datasets.iid_partition(len(rest), N, seed)
    else:
        parts = datasets.dirichlet_partition(y, N, alpha, seed, min_size=5)
    return [rest[p] for p in parts]


def validation_eval(x: np.ndarray, y: np.ndarray):
    """The ServerApp's ``central_eval`` shape: arrays -> {"accuracy", "loss"}, with ``model/x/y`` attached."""
    model = zoo.build_model("mlp", x.shape[1:], 10)

    def central_eval(arrays) -> dict[str, float]:
        zoo.set_arrays(model, arrays)
        loss, acc = task.evaluate(model, x, y)
        return {"accuracy": acc, "loss": loss}

    central_eval.model, central_eval.x, central_eval.y = zoo.build_model("mlp", x.shape[1:], 10), x, y
    return central_eval


def local_update(ds, idx, g, attack, seed: int, rng) -> tuple[list[np.ndarray], int]:
    """One participant's reply: (arrays, claimed examples), honest or through its attack's hooks."""
    model = zoo.build_model("mlp", ds.feature_shape, 10)
    zoo.set_arrays(model, g)
    x, y = ds.x_train[idx], ds.y_train[idx]
    if attack is None or not attack.skips_training:
        if attack is not None:
            x, y = attack.poison_data(x, y, 10, rng)
        task.train(model, x, y, epochs=EPOCHS, batch_size=BATCH, lr=LR, seed=seed)
    trained = zoo.get_arrays(model)
    if attack is not None:
        trained = attack.poison_update(trained, g, rng)
    claimed = attack.claimed_examples(len(idx)) if attack is not None else len(idx)
    return trained, claimed


def run_one(data: str, attack_name: str, seed: int, rules: list[str], rounds: int, shared=None) -> list[dict]:
    """Every rule on one (data, attack, seed): ``rounds`` rounds each from the same start and partition."""
    ds, rest, (xv, yv) = shared or load_data()
    scheme, alpha = DATA[data]
    parts = partitions(ds, rest, scheme, alpha, seed)
    spec, fraction = ATTACKS[attack_name]
    attackers = sorted(np.random.default_rng(seed + 7).permutation(N)[: int(round(fraction * N))].tolist())
    central_eval = validation_eval(xv, yv)
    out = []
    for name in rules:
        t0 = time.perf_counter()
        combine = defence.rule(name).load_combine()
        rng = np.random.default_rng(1000 * seed + 17)
        model = zoo.build_model("mlp", ds.feature_shape, 10, seed=seed)
        g = zoo.get_arrays(model)
        history = {i: [] for i in range(N)}
        cumulative = np.zeros(N)
        excluded = 0
        for rnd in range(1, rounds + 1):
            replies = [
                local_update(
                    ds,
                    parts[i],
                    g,
                    attacks.get_attack(spec) if i in attackers else None,
                    seed * 1000 + rnd * 10 + i,
                    rng,
                )
                for i in range(N)
            ]
            ups, weights = [r[0] for r in replies], [r[1] for r in replies]
            players = [SimpleNamespace(node_id=i, num_examples=w) for i, w in enumerate(weights)]
            scores = shapley_scorer(rnd, players, [], g, dict(enumerate(ups)), central_eval)
            flags = defence.detect(g, dict(enumerate(ups)), scores, baseline_loss=central_eval(g)["loss"])
            for i in range(N):
                history[i].append({"round": rnd, "accepted": True, "reason": "", "flags": flags[i]})
                cumulative[i] += scores[i]
            loss = lambda arrays: central_eval(arrays)["loss"]  # noqa: E731
            result = combine(ups, weights, loss=loss, scores=[scores[i] for i in range(N)])
            excluded += sum(1 for i in result.excluded if i not in attackers)
            g = result.arrays
        out.append(
            summarise_run(
                data, attack_name, seed, name, rounds, g, ds, attackers, history, cumulative, excluded
            )
            | {"time_s": round(time.perf_counter() - t0, 2)}
        )
    return out


def summarise_run(data, attack, seed, rule, rounds, g, ds, attackers, history, cumulative, honest_excluded):
    model = zoo.build_model("mlp", ds.feature_shape, 10)
    zoo.set_arrays(model, g)
    _, acc = task.evaluate(model, ds.x_test, ds.y_test)
    malicious = {i for i in range(N) if defence.judge_rounds(history[i], rounds=rounds)[0]}
    names = {i: f"p{i}" for i in range(N)}
    shares = shares_bps(
        {names[i]: float(cumulative[i]) for i in range(N)},
        creator="creator",
        creator_share_bps=0,
        excluded={names[i] for i in malicious},
    )
    return {
        "data": data,
        "attack": attack,
        "seed": seed,
        "rule": rule,
        "accuracy": float(acc),
        "attackers": attackers,
        "malicious": sorted(malicious),
        "true_positives": len(malicious & set(attackers)),
        "false_positives": len(malicious - set(attackers)),
        "attacker_stake_bps": sum(shares[names[i]] for i in attackers),
        "honest_excluded_updates": honest_excluded,
        "honest_updates": rounds * (N - len(attackers)),
    }


def summarise(rows: list[dict]) -> list[dict]:
    """One line per (data, attack, rule), over seeds."""
    out = []
    keys = dict.fromkeys((r["data"], r["attack"], r["rule"]) for r in rows)
    for data, attack, rule in keys:
        mine = [r for r in rows if (r["data"], r["attack"], r["rule"]) == (data, attack, rule)]
        acc = np.array([r["accuracy"] for r in mine]) * 100
        tp = sum(r["true_positives"] for r in mine)
        fp = sum(r["false_positives"] for r in mine)
        positives = sum(len(r["attackers"]) for r in mine)
        out.append(
            {
                "data": data,
                "attack": attack,
                "rule": rule,
                "seeds": len(mine),
                "accuracy_mean": round(float(acc.mean()), 2),
                "accuracy_std": round(float(acc.std()), 2),
                "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                "recall": round(tp / positives, 4) if positives else None,
                "attacker_stake_pct": round(float(np.mean([r["attacker_stake_bps"] for r in mine])) / 100, 2),
                "honest_banned": fp,
                "honest_excluded_pct": round(
                    100
                    * sum(r["honest_excluded_updates"] for r in mine)
                    / sum(r["honest_updates"] for r in mine),
                    1,
                ),
            }
        )
    return out


def targets(summary: list[dict]) -> list[dict]:
    """The issue's targets per (data, rule): each ``{"target", "value", "met"}``."""
    out = []
    fedavg_clean = {
        s["data"]: s["accuracy_mean"] for s in summary if s["rule"] == "fedavg" and s["attack"] == "clean"
    }
    for data, rule in dict.fromkeys((s["data"], s["rule"]) for s in summary):
        mine = {s["attack"]: s for s in summary if (s["data"], s["rule"]) == (data, rule)}
        attacked = [s for a, s in mine.items() if a != "clean"]
        clean = mine.get("clean")
        checks = []
        if clean and attacked and data == "iid":
            gap = max(clean["accuracy_mean"] - s["accuracy_mean"] for s in attacked)
            checks.append(("every attack within 1 pt of clean", round(gap, 2), gap <= 1.0))
        if clean and attacked and data != "iid":
            gap = fedavg_clean.get(data, clean["accuracy_mean"]) - clean["accuracy_mean"]
            mean = float(np.mean([s["accuracy_mean"] for s in attacked]))
            worst = min(s["accuracy_mean"] for s in attacked)
            checks += [
                ("clean within 1 pt of FedAvg clean", round(gap, 2), gap <= 1.0),
                ("mean over attacks >= 85", round(mean, 2), mean >= 85),
                ("worst attack >= 80", round(worst, 2), worst >= 80),
            ]
        if attacked:
            limit = 1.0 if data == "iid" else 3.0
            stake = max(s["attacker_stake_pct"] for s in attacked)
            checks.append((f"attackers' stake <= {limit:g}%", stake, stake <= limit))
            prec = [s["precision"] for s in attacked if s["precision"] is not None]
            rec = [s["recall"] for s in attacked if s["recall"] is not None]
            checks.append(
                ("verdict precision >= 0.95", min(prec) if prec else None, bool(prec) and min(prec) >= 0.95)
            )
            checks.append(
                ("verdict recall >= 0.95", min(rec) if rec else None, bool(rec) and min(rec) >= 0.95)
            )
        banned = sum(s["honest_banned"] for s in mine.values())
        checks.append(("no honest participant banned", banned, banned == 0))
        out += [{"data": data, "rule": rule, "target": t, "value": v, "met": bool(m)} for t, v, m in checks]
    return out


def accuracy_table(summary: list[dict], data: str) -> str:
    rows = [s for s in summary if s["data"] == data]
    attacks_ = list(dict.fromkeys(s["attack"] for s in rows))
    lines = ["| rule | " + " | ".join(attacks_) + " |", "|---|" + "---:|" * len(attacks_)]
    for rule in dict.fromkeys(s["rule"] for s in rows):
        cells = {s["attack"]: s for s in rows if s["rule"] == rule}
        lines.append(
            f"| {rule} | "
            + " | ".join(
                f"{cells[a]['accuracy_mean']:.1f} ± {cells[a]['accuracy_std']:.1f}" for a in attacks_
            )
            + " |"
        )
    return "\n".join(lines)


def defence_table(summary: list[dict], data: str) -> str:
    """Per rule, over the attacks: verdict precision / recall (worst attack), attackers' stake (worst),
    honest participants banned (all runs, clean included), honest updates left out of the aggregate."""
    rows = [s for s in summary if s["data"] == data]
    lines = [
        "| rule | precision (min) | recall (min) | attackers' stake % (max) | honest banned | honest updates left out % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rule in dict.fromkeys(s["rule"] for s in rows):
        mine = [s for s in rows if s["rule"] == rule]
        attacked = [s for s in mine if s["attack"] != "clean"]
        prec = [s["precision"] for s in attacked if s["precision"] is not None]
        rec = [s["recall"] for s in attacked if s["recall"] is not None]
        clean = [s["honest_excluded_pct"] for s in mine if s["attack"] == "clean"]
        lines.append(
            f"| {rule} | {min(prec) if prec else float('nan'):.2f} | {min(rec) if rec else float('nan'):.2f} | "
            f"{max((s['attacker_stake_pct'] for s in attacked), default=0):.2f} | "
            f"{sum(s['honest_banned'] for s in mine)} | {clean[0] if clean else float('nan'):.1f} (clean) |"
        )
    return "\n".join(lines)


def tables(results: dict) -> str:
    """The Markdown tables (accuracy, then defence, per data distribution) from the results JSON."""
    summary, args = results["summary"], results["args"]
    out = [
        f"{args['seeds']} seed(s) × {args['rounds']} rounds, 10 participants; test accuracy % (mean ± std over seeds)."
    ]
    for data in dict.fromkeys(s["data"] for s in summary):
        label = "IID" if data == "iid" else "Dirichlet α = 0.3"
        out += [f"\n**{label}: accuracy**\n", accuracy_table(summary, data)]
        out += [f"\n**{label}: verdicts and stakes**\n", defence_table(summary, data)]
    return "\n".join(out)


START, END = "<!-- robustness:start -->", "<!-- robustness:end -->"


def write_readme(results: dict, path: Path = README) -> None:
    """Replace the text between the robustness markers of README.md with :func:`tables`."""
    text = path.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no {START} ... {END} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{tables(results)}\n{END}{tail}")


def _job(args: tuple) -> list[dict]:
    torch.set_num_threads(1)
    return run_one(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2, help="processes (the machine has 2 cores)")
    ap.add_argument("--rules", default=",".join(defence.RULES), help="comma-separated registry names")
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--data", default=",".join(DATA))
    ap.add_argument("--quick", action="store_true", help="1 seed, 3 rounds")
    ap.add_argument("--readme", action="store_true", help="only rewrite README.md's table from the JSON")
    args = ap.parse_args()
    if args.readme:
        write_readme(json.loads(RESULTS.read_text()))
        return
    if args.quick:
        args.seeds, args.rounds = 1, 3
    torch.set_num_threads(1)
    rules = args.rules.split(",")
    jobs = [
        (data, attack, seed, rules, args.rounds)
        for data in args.data.split(",")
        for attack in args.attacks.split(",")
        for seed in range(args.seeds)
    ]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        rows = []
        for k, part in enumerate(pool.imap(_job, jobs), 1):
            rows += part
            print(
                f"[{time.perf_counter() - t0:6.0f} s] {k}/{len(jobs)} {part[0]['data']} {part[0]['attack']}",
                flush=True,
            )
    summary = summarise(rows)
    results = {
        "args": vars(args),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "summary": summary,
        "targets": targets(summary),
        "runs": rows,
    }
    print(tables(results))
    print("\nTargets:")
    for t in results["targets"]:
        print(f"  [{'x' if t['met'] else ' '}] {t['data']:9} {t['rule']:18} {t['target']}: {t['value']}")
    print(f"\nwall time {results['wall_time_s']} s")
    out = RESULTS.with_name("robustness-quick.json") if args.quick else RESULTS  # a smoke run keeps the table
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
