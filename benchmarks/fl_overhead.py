"""FL overhead: the same job run as (a) plain Flower, (b) the platform with subprocess isolation, (c) the
platform with the warm client start.

Job: 10 SuperNodes on digits (IID partitions), MLP, 5 rounds, lr 0.05, 3 local epochs, batch 32, seed 42.
(a) stock FedAvg ServerApp (benchmarks/plain_app), insecure SuperLink, stock SuperNodes, no platform.
(b) and (c) the platform: a task registered on anvil by its creator's wallet, 10 signed joins, node keys
registered on the TLS + node-auth SuperLink, a run launched by training.services, every reply's signature
and shape checked, round records + Merkle roots ingested and committed on chain through the ledger, one
commitRound per round; (b) SuperNodes with Flower's subprocess isolation, (c) with training.client's warm
launcher. Scoring is the default (accepted = 1): contribution scoring is off.

Usage: .venv/bin/python benchmarks/fl_overhead.py [--nodes 10] [--rounds 5] [--modes plain,subprocess,warm]
Prints a table and writes benchmarks/results/fl_overhead.json. ``--quick`` (3 nodes, 2 rounds, all three
modes; a few minutes) writes fl_overhead-quick.json instead, so a smoke run keeps the published numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="bcfl-fl-overhead-"))
print(f"work directory: {WORK}", flush=True)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "bcfl_site.settings.local",
        "BCFL_VAR_DIR": str(WORK / "var"),
        "DATABASE_URL": f"sqlite:///{WORK / 'bench.sqlite3'}",
        "BCFL_DATASET_CACHE": str(WORK / "datasets"),
        "LOG_LEVEL": "WARNING",
    }
)

HPARAMS = {"lr": 0.05, "local-epochs": 3, "batch-size": 32, "seed": 42, "dataset": "digits", "model": "mlp"}
PLAIN_APP = ROOT / "benchmarks" / "plain_app"


def wall_until(predicate, timeout: float, poll: float = 0.5) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not done after {timeout} s")
        time.sleep(poll)
    return time.monotonic() - start


def run_plain(nodes: int, rounds: int) -> dict:
    """(a) stock Flower: insecure SuperLink, stock SuperNodes (subprocess isolation), stock FedAvg."""
    from training import superlink as sl
    from training.client import supernode as sn

    work = WORK / "plain"
    home = work / "flwr_home"
    home.mkdir(parents=True)
    port = sl.free_port()
    env = sl.process_env(home)
    link = subprocess.Popen(  # noqa: S603
        [
            sl.flower_bin("flower-superlink"),
            "--insecure",
            "--disable-runtime-dependency-installation",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "superlink.log", "w"),
        start_new_session=True,  # noqa: SIM115
    )
    handles = []
    try:
        sl.wait_for_port("127.0.0.1", port, timeout=60, proc=link)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "plain"\n\n[superlink.plain]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
        )
        handles = sn.start_supernodes(
            nodes,
            superlink=f"127.0.0.1:{port}",
            isolation="subprocess",
            workdir=work / "nodes",
            flwr_home=home,
        )
        result = work / "result.json"
        config = {**HPARAMS, "num-server-rounds": rounds, "min-nodes": nodes, "result-path": str(result)}
        t0 = time.monotonic()
        out = subprocess.run(  # noqa: S603
            [
                sl.flower_bin("flwr"),
                "run",
                str(PLAIN_APP),
                "plain",
                "--run-config",
                sl.format_config(config),
                "--format",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert "run-id" in out.stdout, out.stdout + out.stderr
        wall_until(result.exists, timeout=1800)
        wall = time.monotonic() - t0
        history = json.loads(result.read_text())["history"]
        return {
            "wall_s": round(wall, 1),
            "accuracy": [round(h["accuracy"], 4) for h in history if h["round"] > 0],
        }
    finally:
        sn.stop_all(handles)
        sl.stop_process(link)


def platform_setup():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_platform(
    nodes: int, rounds: int, isolation: str, anvil_url: str, creator_key: str, trace_phases: bool = False
) -> dict:
    """(b)/(c): the platform path, driven in-process (jobs called directly; ledger txs processed in order)."""
    import numpy as np
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from eth_account import Account

    from bcfl_core import dataspec, eip712
    from contracts import chain
    from contracts.devwallet import dev_send
    from contracts.models import ChainTx
    from contracts.services import chain_tx_process
    from tasks.models import Task
    from tasks.services import participation_join, task_create, task_create_call, task_registration_confirm
    from training import datasets, services
    from training import superlink as sl
    from training.client import supernode as sn
    from training.client import wallet as wallet_mod
    from training.models import Round, Run

    User = get_user_model()
    work = WORK / isolation
    settings.VAR_DIR = work / "var"
    settings.FLWR_HOME = work / "flwr_home"
    settings.PRIVATE_MEDIA_ROOT = work / "private"
    settings.SUPERLINK_ADDRESS = f"127.0.0.1:{sl.free_port()}"
    settings.TRAINING_ROUND_TIMEOUT = 600.0
    settings.TRAINING_RUN_CONFIG_EXTRA = dict(HPARAMS)
    settings.CHAIN_RPC_URL = anvil_url
    queued: list[tuple] = []
    from training.services import common as services_common

    services_common.enqueue = lambda name, *a, countdown=None: queued.append((name, *a))

    ds = datasets.load_dataset("digits")
    buf = io.BytesIO()
    np.savez(buf, x=ds.x_test, y=ds.y_test)
    creator, _ = User.objects.get_or_create(username=Account.from_key(creator_key).address)
    task = task_create(
        creator=creator,
        title=f"fl-overhead {isolation}",
        model_kind="mlp",
        learning_rate=HPARAMS["lr"],
        local_epochs=HPARAMS["local-epochs"],
        batch_size=HPARAMS["batch-size"],
        feature_shape=[64],
        label_set=list(range(10)),
        min_samples_per_participant=10,
        rounds=rounds,
        min_participants=nodes,
        max_participants=nodes,
        aggregation_rule="fedavg",
        reward_wei=10**16,
        creator_share_bps=500,
        validation_file=ContentFile(buf.getvalue(), name="val.npz"),
    )
    tx_hash = dev_send(task_create_call(task=task), creator_key, timeout=30)
    task_registration_confirm(task=task, tx_hash=tx_hash, by=creator)

    link = services.superlink()
    handles = []
    try:
        link.start()
        keys = []
        for i in range(nodes):
            wallet = wallet_mod.create_key_file(work / "wallets" / f"w{i}.key")
            key, pub = sl.generate_node_key(work / "keys" / f"node{i}")
            keys.append(key)
            x, y = datasets.partition(ds.x_train, ds.y_train, i, nodes, scheme="iid", seed=HPARAMS["seed"])
            summary = dataspec.data_summary(x, y)
            msg = eip712.join_typed_data(
                chain_id=settings.CHAIN_ID,
                verifying_contract=chain.deployment_address("TaskRegistry"),
                task_id=task.chain_task_id,
                participant=wallet.address,
                node_public_key=pub.read_text(),
                data_summary=summary,
            )
            user, _ = User.objects.get_or_create(username=wallet.address)
            participation_join(
                task=task,
                user=user,
                participant=wallet.address,
                node_public_key=pub.read_text(),
                data_summary=summary,
                signature=eip712.sign_typed_data(msg, wallet.private_key),
            )
            name, reg_id = queued.pop()
            services.node_register(registration_id=reg_id, link=link)
        handles = sn.start_supernodes(
            nodes,
            superlink=link.address,
            isolation=isolation,
            auth_private_keys=keys,
            root_certificates=link.certs["ca_cert"],
            workdir=work / "nodes",
            flwr_home=work / "node_home",
            node_config=lambda i: {
                "partition-id": i,
                "num-partitions": nodes,
                "dataset": "digits",
                "key-path": str(work / "wallets" / f"w{i}.key"),
            },
            trace_phases=trace_phases,
        )
        task.refresh_from_db()
        assert task.status == Task.Status.TRAINING, task.status
        run = Run.objects.get(task=task)
        t0 = time.monotonic()
        services.training_run_launch(run_id=run.pk, link=link, follow=False)
        run_id, state = run.pk, "running"
        deadline = time.monotonic() + 1800
        while state not in ("finalizing", "failed") and time.monotonic() < deadline:
            state, run_id = services.training_follow(run_id=run_id, link=link, max_seconds=0)
            for pending in ChainTx.objects.filter(status=ChainTx.Status.QUEUED).order_by("pk"):
                chain_tx_process(tx_id=pending.pk)
            time.sleep(0.5)
        wall = time.monotonic() - t0
        assert state == "finalizing", (state, Task.objects.get(pk=task.pk).status_note)
        rounds_done = list(Round.objects.filter(task=task).order_by("number"))
        commits = ChainTx.objects.filter(function="commitRound", task_ref=str(task.pk))
        extra = {}
        if isolation == "warm":  # where a ClientApp child's time goes (phases only with --trace-phases)
            from training.client.launcher import summarize_stats

            extra["clientapp_children"] = summarize_stats(sorted((work / "nodes").glob("node*.stats.jsonl")))
        return {
            **extra,
            "wall_s": round(wall, 1),
            "accuracy": [round(r.accuracy, 4) for r in rounds_done],
            "commits_confirmed": commits.filter(status=ChainTx.Status.CONFIRMED).count(),
            "updates_accepted": sum(r.accepted_count for r in rounds_done),
            "updates_rejected": sum(r.rejected_count for r in rounds_done),
        }
    finally:
        sn.stop_all(handles)
        link.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="plain,subprocess,warm")
    parser.add_argument(
        "--trace-phases",
        action="store_true",
        help="warm mode: log each ClientApp child's steps to <workdir>/warm/nodes/node*.stats.jsonl",
    )
    parser.add_argument("--out", default=None, help="default benchmarks/results/fl_overhead[-quick].json")
    parser.add_argument("--quick", action="store_true", help="3 nodes, 2 rounds: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.rounds = 3, 2
    if args.out is None:
        args.out = str(ROOT / "benchmarks" / "results" / f"fl_overhead{'-quick' if args.quick else ''}.json")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    from tests.anvil import DEV_KEYS, Anvil
    from training import datasets

    datasets.load_dataset("digits")  # fill the dataset cache once, outside the timings
    results: dict[str, dict] = {}
    anvil = Anvil().start()
    os.environ["CHAIN_RPC_URL"] = anvil.url
    try:
        if any(m != "plain" for m in modes):
            platform_setup()
            from django.core.management import call_command

            call_command("deploy_contracts", "--redeploy-missing", verbosity=0)
        for mode in modes:
            load = os.getloadavg()[0]
            if mode == "plain":
                results["a_plain_flower"] = {
                    **run_plain(args.nodes, args.rounds),
                    "load_before": round(load, 1),
                }
            else:
                key = "b_platform_subprocess" if mode == "subprocess" else "c_platform_warm"
                results[key] = {
                    **run_platform(args.nodes, args.rounds, mode, anvil.url, DEV_KEYS[6], args.trace_phases),
                    "load_before": round(load, 1),
                }
            print(mode, json.dumps(results[list(results)[-1]]), flush=True)
    finally:
        anvil.stop()

    base = results.get("a_plain_flower", {}).get("wall_s")
    rows = [
        "| configuration | wall time (s) | ratio to (a) | final accuracy | accuracy per round |",
        "|---|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        ratio = f"{r['wall_s'] / base:.2f}" if base else "-"
        r["ratio_to_plain"] = float(ratio) if base else None
        rows.append(f"| {name} | {r['wall_s']} | {ratio} | {r['accuracy'][-1]:.4f} | {r['accuracy']} |")
    print("\n".join(rows))
    payload = {
        "job": {"nodes": args.nodes, "rounds": args.rounds, **HPARAMS, "partitioning": "iid"},
        "machine": {"cpus": os.cpu_count(), "loadavg_end": round(os.getloadavg()[0], 1)},
        "results": results,
    }
    Path(args.out).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
