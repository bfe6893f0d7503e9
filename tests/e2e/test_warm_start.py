"""Warm ClientApp start: SuperNodes with `--isolation process` + our forking launcher.

The same 2-round digits run (same seeds) goes once through stock subprocess isolation and once
through the warm launcher, each on its own SuperLink (TLS + SuperNode auth). Both must give the
same central accuracy every round; the warm nodes must start no ClientApp interpreter: every
Python interpreter start in the SuperNodes' process trees is logged by a sitecustomize hook,
and the launcher logs its forks. No timing assertions.
"""

import json
import time
from collections import Counter

import pytest

from training import datasets
from training import superlink as sl
from training.client import supernode as sn
from training.client.launcher import read_stats

pytestmark = pytest.mark.slow

ROUNDS = 2
NODES = 2
RUN_TIMEOUT = 420

SITECUSTOMIZE = """\
import json, os, sys
_path = os.environ.get("BCFL_STARTUP_LOG")
if _path:
    with open(_path, "a") as _f:
        _f.write(json.dumps({"pid": os.getpid(), "argv": list(sys.orig_argv)}) + "\\n")
"""


def _run(tmp_path, mode, hook_dir):
    work = tmp_path / mode
    startup_log = work / "startups.jsonl"
    work.mkdir()
    link = sl.SuperLink(
        var_dir=work / "var", address=f"127.0.0.1:{sl.free_port()}", flwr_home=work / "flwr_home"
    )
    handles = []
    try:
        link.start()
        keys, node_ids = [], []
        for i in range(NODES):
            key, pub = sl.generate_node_key(work / "keys" / f"node{i}")
            keys.append(key)
            node_ids.append(link.register_node(pub, name=f"{mode}{i}"))
        handles = sn.start_supernodes(
            NODES,
            superlink=link.address,
            isolation=mode,
            auth_private_keys=keys,
            root_certificates=link.certs["ca_cert"],
            workdir=work / "nodes",
            flwr_home=link.flwr_home,
            extra_env={"PYTHONPATH": str(hook_dir), "BCFL_STARTUP_LOG": str(startup_log)},
        )
        records = work / "rounds.jsonl"
        out = work / "out"
        run_id = link.start_run(
            sl.APP_DIR,
            {
                "num-server-rounds": ROUNDS,
                "min-nodes": NODES,
                "seed": 7,
                "records-path": str(records),
                "output-dir": str(out),
            },
        )
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (out / "model.json").exists():
            assert time.monotonic() < deadline, f"{mode}: run not done after {RUN_TIMEOUT}s"
            for h in handles:
                assert h.alive(), f"{mode}: SuperNode or launcher died, see {h.log_path}"
            time.sleep(1)
        status = link.wait_run(run_id, timeout=60)
        assert status == "finished:completed", link.run_logs(run_id)[-3000:]
        lines = [json.loads(line) for line in records.read_text().splitlines()]
        assert [r["round"] for r in lines] == list(range(1, ROUNDS + 1))
        for r in lines:
            assert sorted(u["node_id"] for u in r["updates"]) == sorted(node_ids)
            assert all(u["accepted"] for u in r["updates"])
        stats = [read_stats(h.stats_path) if h.stats_path else [] for h in handles]
        supernode_pids = [h.supernode.pid for h in handles]
        launcher_pids = [h.launcher.pid if h.launcher else None for h in handles]
    finally:
        sn.stop_all(handles)
        link.stop()
    startups = [json.loads(line) for line in startup_log.read_text().splitlines()]
    return {
        "accuracy": [r["accuracy"] for r in lines],
        "startups": startups,
        "stats": stats,
        "supernode_pids": supernode_pids,
        "launcher_pids": launcher_pids,
    }


def _program(startup):
    argv = startup["argv"]
    if "-m" in argv:
        return argv[argv.index("-m") + 1]
    return argv[1].rsplit("/", 1)[-1] if len(argv) > 1 else argv[0]


def test_warm_launcher_matches_subprocess_isolation_without_interpreter_starts(tmp_path, monkeypatch):
    # given: prepared digits splits, and a sitecustomize hook that logs interpreter starts
    monkeypatch.setenv("BCFL_DATASET_CACHE", str(tmp_path / "datasets"))
    datasets.load_dataset("digits")
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)

    # when: the same run goes through stock subprocess isolation and through the warm launcher
    stock = _run(tmp_path, "subprocess", hook_dir)
    warm = _run(tmp_path, "warm", hook_dir)

    # then: identical central accuracy every round (same seeds, same flwr code path)
    print("ACCURACY", json.dumps({"subprocess": stock["accuracy"], "warm": warm["accuracy"]}))
    assert warm["accuracy"] == pytest.approx(stock["accuracy"], abs=1e-9)
    assert warm["accuracy"][-1] >= 0.85

    # stock: every ClientApp message started its own interpreter
    stock_programs = Counter(_program(s) for s in stock["startups"])
    print(
        "STARTUPS",
        json.dumps({"subprocess": stock_programs, "warm": Counter(_program(s) for s in warm["startups"])}),
    )
    assert stock_programs["flwr-clientapp"] == ROUNDS * NODES
    assert stock_programs["flower-superexec"] == NODES

    # warm: one SuperNode + one launcher interpreter per node, however many messages
    warm_programs = Counter(_program(s) for s in warm["startups"])
    assert warm_programs == Counter({"flower-supernode": NODES, "training.client.launcher": NODES})
    assert sorted(s["pid"] for s in warm["startups"]) == sorted(
        warm["supernode_pids"] + warm["launcher_pids"]
    )
    for stats, launcher_pid in zip(warm["stats"], warm["launcher_pids"], strict=True):
        starts = [e for e in stats if e["event"] == "start"]
        forks = [e for e in stats if e["event"] == "fork"]
        exits = [e for e in stats if e["event"] == "exit"]
        assert [e["generation"] for e in starts] == [0]  # one run: no restart
        assert all(e["pid"] == launcher_pid for e in forks)
        assert len(forks) == ROUNDS  # one train message per round (federated evaluation is off)
        assert len({e["task_id"] for e in forks}) == ROUNDS
        # children exit 0 after pushing their reply; those still winding down are reaped at stop
        assert all(e["code"] == 0 for e in exits if e["code"] != -9), exits
