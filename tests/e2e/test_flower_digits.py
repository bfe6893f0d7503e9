"""Real Flower deployment: SuperLink with TLS + SuperNode auth, 3 registered SuperNodes on digits."""

import json
import time

import pytest

from training import datasets
from training import superlink as sl
from training.flower_app.server_app import sha256_file

pytestmark = pytest.mark.slow

ROUNDS = 5
NODES = 3
RUN_TIMEOUT = 420  # about 150 s on an idle 2-core machine; generous for a shared one


def _wait_for(path, proc_check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        proc_check()
        time.sleep(1)
    raise AssertionError(f"{path} not written after {timeout}s")


def test_flower_digits_run_with_authenticated_supernodes(tmp_path, monkeypatch):
    # given: a prepared digits split that every ClientApp process reads without scikit-learn
    monkeypatch.setenv("BCFL_DATASET_CACHE", str(tmp_path / "datasets"))
    datasets.load_dataset("digits")
    # and a fresh SuperLink (own var dir and FLWR_HOME) on a free port
    link = sl.SuperLink(
        var_dir=tmp_path / "var", address=f"127.0.0.1:{sl.free_port()}", flwr_home=tmp_path / "flwr_home"
    )
    nodes = []
    timings = {}
    try:
        t0 = time.monotonic()
        link.start()
        timings["superlink_start_s"] = round(time.monotonic() - t0, 1)
        node_ids = []
        for i in range(NODES):
            key, pub = sl.generate_node_key(tmp_path / "keys" / f"node{i}")
            node_ids.append(link.register_node(pub, name=f"node{i}"))
            nodes.append(
                link.start_supernode(
                    sl.free_port(),
                    key,
                    {"partition-id": i, "num-partitions": NODES, "dataset": "digits"},
                    log_path=tmp_path / f"supernode{i}.log",
                )
            )
        # an unregistered key cannot join: flower-supernode logs exit code 305 ("Failed to
        # activate SuperNode") and its process ends with status 1 (uvicorn startup failed)
        stranger_key, _ = sl.generate_node_key(tmp_path / "keys" / "stranger")
        stranger = link.start_supernode(
            sl.free_port(),
            stranger_key,
            {"partition-id": 0, "num-partitions": NODES},
            log_path=tmp_path / "stranger.log",
        )
        nodes.append(stranger)
        assert stranger.supernode.wait(timeout=60) != 0, "an unregistered SuperNode must be refused"
        assert "Exit Code: 305" in (tmp_path / "stranger.log").read_text()
        stranger.stop()  # its flower-superexec child would keep retrying
        timings["setup_s"] = round(time.monotonic() - t0, 1)

        # when: the app runs 5 rounds over the 3 nodes
        out = tmp_path / "out"
        records = tmp_path / "rounds.jsonl"
        t1 = time.monotonic()
        run_id = link.start_run(
            sl.APP_DIR,
            {
                "num-server-rounds": ROUNDS,
                "min-nodes": NODES,
                "lr": 0.05,
                "local-epochs": 3,
                "batch-size": 32,
                "records-path": str(records),
                "output-dir": str(out),
            },
        )

        def alive():
            for node in nodes[:NODES]:
                assert node.alive(), f"SuperNode exited with {node.supernode.returncode}"

        _wait_for(out / "model.json", alive, RUN_TIMEOUT)  # cheaper than polling flwr ls
        status = link.wait_run(run_id, timeout=60)
        timings["run_s"] = round(time.monotonic() - t1, 1)

        # then
        assert status == "finished:completed", link.run_logs(run_id)[-3000:]
        lines = [json.loads(line) for line in records.read_text().splitlines()]
        assert [r["round"] for r in lines] == list(range(1, ROUNDS + 1))
        for r in lines:
            assert sorted(u["node_id"] for u in r["updates"]) == sorted(node_ids)
            assert all(
                u["accepted"] and len(u["sha256"]) == 64 and u["num_examples"] > 0 for u in r["updates"]
            )
        assert lines[-1]["accuracy"] >= 0.90, [r["accuracy"] for r in lines]
        model = out / "global_model.safetensors"
        digest = sha256_file(model)
        assert (out / "global_model.safetensors.sha256").read_text().split()[0] == digest
        card = json.loads((out / "model.json").read_text())
        assert card["file_sha256"] == digest
        assert card["weights_sha256"] == lines[-1]["global_sha256"]
        online = {int(n["node-id"]) for n in link.list_nodes() if n["status"] == "online"}
        assert set(node_ids) <= online
        # a ban unregisters the node's key
        link.unregister_node(node_ids[0])
        status_of = {int(n["node-id"]): n["status"] for n in link.list_nodes()}
        assert status_of.get(node_ids[0], "unregistered") == "unregistered"
        stamps = [r["time"] for r in lines]
        timings["per_round_s"] = round((stamps[-1] - stamps[0]) / (ROUNDS - 1), 1)
        timings["serverapp_s"] = round(card["seconds"], 1)
        timings["accuracy"] = [round(r["accuracy"], 4) for r in lines]
        print("TIMINGS", json.dumps(timings))
    finally:
        for node in nodes:
            node.stop()
        link.stop()
