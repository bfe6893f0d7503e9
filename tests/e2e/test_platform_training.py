"""Platform training end to end: anvil + contracts, SuperLink (TLS + node auth), 3 SuperNodes on digits.

Driven through training.services in-process (no Celery worker); ledger transactions are processed with
chain_tx_process. The ServerApp is killed with SIGKILL after round 2; the follower resumes from round 2's
checkpoint. Then: 5 rounds, one commitRound each, verify_task OK, and a tampered record is detected.
"""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from eth_account import Account

from contracts import chain
from contracts.models import ChainTx
from contracts.services import chain_tx_process
from tasks import eip712
from tasks.models import Task
from tasks.services import participation_join, task_create, task_create_call, task_registration_confirm
from tests.anvil import DEV_KEYS
from tests.tasks.conftest import UserFactory
from tests.tasks.test_chain_flow import send
from training import datasets, services
from training import superlink as sl
from training.models import Round, Run, Update
from training.verify import verify_task

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
ROUNDS, NODES = 5, 3
KILL_AFTER_ROUND = 2


def _serverapp_pids() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"flwr-serverapp" in part for part in cmd[:2]):
                pids.append(int(d.name))
    return pids


def test_platform_training_with_signed_updates_crash_and_resume(tmp_path, settings, anvil, monkeypatch):
    from training.client import wallet as wallet_mod

    # given: chain, settings, dataset cache
    monkeypatch.setenv("BCFL_DATASET_CACHE", str(tmp_path / "datasets"))
    ds = datasets.load_dataset("digits")
    settings.CHAIN_RPC_URL, settings.CHAIN_ID = anvil.url, 31337
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.VAR_DIR = tmp_path / "var"
    settings.FLWR_HOME = tmp_path / "flwr_home"
    settings.SUPERLINK_ADDRESS = f"127.0.0.1:{sl.free_port()}"
    settings.TRAINING_HEARTBEAT_TIMEOUT = 12
    settings.TRAINING_ROUND_TIMEOUT = 180.0
    settings.TRAINING_RUN_CONFIG_EXTRA = {"dataset": "digits", "local-epochs": 3, "batch-size": 32}
    call_command("deploy_contracts", "--redeploy-missing")
    queued: list[tuple] = []
    monkeypatch.setattr(services, "_enqueue", lambda name, *a, countdown=None: queued.append((name, *a)))
    timings: dict = {}
    t0 = time.monotonic()

    # and: a digits task registered on chain by its creator, the validation set = digits test split
    creator_key = DEV_KEYS[5]
    buf = io.BytesIO()
    np.savez(buf, x=ds.x_test, y=ds.y_test)
    task = task_create(
        creator=UserFactory(username=Account.from_key(creator_key).address), title="Digits e2e", model_kind="mlp",
        learning_rate=0.05, local_epochs=3, batch_size=32, feature_shape=[64], label_set=list(range(10)),
        min_samples_per_participant=10, rounds=ROUNDS, min_participants=NODES, max_participants=NODES,
        aggregation_rule="fedavg", reward_wei=10**17, creator_share_bps=500,
        validation_file=ContentFile(buf.getvalue(), name="val.npz"),
    )  # fmt: skip
    task_registration_confirm(
        task=task, tx_hash=send(task_create_call(task=task), creator_key), by=task.creator
    )
    link = services.superlink()
    nodes = []
    try:
        link.start()
        # when: three participants join with signed Joins; the registration jobs run; training starts
        for i in range(NODES):
            wallet = wallet_mod.create_key_file(tmp_path / f"w{i}.key")
            key, pub = sl.generate_node_key(tmp_path / "keys" / f"node{i}")
            x, y = datasets.partition(ds.x_train, ds.y_train, i, NODES, scheme="iid", seed=task.pk)
            summary = datasets.data_summary(x, y)
            msg = eip712.join_typed_data(
                chain_id=31337, verifying_contract=chain.deployment_address("TaskRegistry"),
                task_id=task.chain_task_id, participant=wallet.address, node_public_key=pub.read_text(),
                data_summary=summary,
            )  # fmt: skip
            participation_join(
                task=task, user=UserFactory(username=wallet.address), participant=wallet.address,
                node_public_key=pub.read_text(), data_summary=summary,
                signature=eip712.sign_typed_data(msg, wallet.private_key),
            )  # fmt: skip
            name, reg_id = queued.pop()
            assert name == "node_register"
            services.node_register(registration_id=reg_id, link=link)
            nodes.append(
                link.start_supernode(
                    sl.free_port(),
                    key,
                    {
                        "partition-id": i,
                        "num-partitions": NODES,
                        "dataset": "digits",
                        "key-path": str(tmp_path / f"w{i}.key"),
                    },
                    log_path=tmp_path / f"supernode{i}.log",
                )  # fmt: skip
            )
        task.refresh_from_db()
        assert task.status == Task.Status.TRAINING
        run = Run.objects.get(task=task)
        services.training_run_launch(run_id=run.pk, link=link, follow=False)
        timings["setup_s"] = round(time.monotonic() - t0, 1)

        # and: the follower runs; the ServerApp is killed after round 2; ledger txs are sent in order
        killed = False
        run_id, state = run.pk, "running"
        deadline = time.monotonic() + 420
        while state not in ("finalizing", "failed") and time.monotonic() < deadline:
            state, run_id = services.training_follow(run_id=run_id, link=link, max_seconds=0)
            for tx in ChainTx.objects.filter(function="commitRound", status=ChainTx.Status.QUEUED).order_by(
                "pk"
            ):
                assert chain_tx_process(tx_id=tx.pk).status == ChainTx.Status.CONFIRMED, tx.error
            if not killed and services.last_round_number(task) >= KILL_AFTER_ROUND:
                pids = _serverapp_pids()
                assert pids, "no flwr-serverapp process found"
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed = True
                timings["killed_after_round"] = services.last_round_number(task)
            time.sleep(2)
        timings["total_s"] = round(time.monotonic() - t0, 1)

        # then
        task.refresh_from_db()
        assert state == "finalizing" and task.status == Task.Status.FINALIZING, (state, task.status_note)
        rounds = list(Round.objects.filter(task=task).order_by("number"))
        assert [r.number for r in rounds] == list(range(1, ROUNDS + 1))
        assert Run.objects.filter(task=task).count() >= 2  # resumed
        assert ChainTx.objects.filter(function="commitRound").count() == ROUNDS
        assert all(r.accepted_count == NODES and r.rejected_count == 0 for r in rounds)
        assert rounds[-1].accuracy >= 0.90, [r.accuracy for r in rounds]
        result = verify_task(task)
        assert result.ok, result.mismatch
        # and: one altered stored update record is detected
        u = Update.objects.filter(round__number=3).first()
        Update.objects.filter(pk=u.pk).update(update_sha256="00" * 32)
        bad = verify_task(task)
        assert not bad.ok and "round 3" in bad.mismatch
        timings["accuracy"] = [round(r.accuracy, 4) for r in rounds]
        timings["runs"] = list(
            Run.objects.filter(task=task).values_list("attempt", "resume_from_round", "status")
        )
        print("TIMINGS", timings)
    finally:
        for node in nodes:
            node.stop()
        link.stop()
