"""Shared set-up of the in-process platform training tests: a digits task on anvil, signed joins, registered
node keys, a TLS + node-auth SuperLink and one real SuperNode per participant; `follow()` drives the follower
and sends the ledger's commitRound transactions in order (no Celery worker).
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.management import call_command
from eth_account import Account

from bcfl_core import dataspec, eip712
from contracts import chain
from contracts.devwallet import dev_send
from contracts.models import ChainTx
from contracts.services import chain_tx_process
from tasks.models import Task
from tasks.services import participation_join, task_create, task_create_call, task_registration_confirm
from tests.anvil import DEV_KEYS
from tests.tasks.factories import UserFactory
from training import datasets, services
from training import superlink as sl
from training.models import Run


@dataclass
class PlatformRun:
    task: Task
    link: sl.SuperLink
    run: Run
    nodes: list = field(default_factory=list)  # SuperNodeHandle per participant, in join order
    node_ids: list[int] = field(default_factory=list)
    wallets: list[str] = field(default_factory=list)
    queued: list[tuple] = field(default_factory=list)  # jobs the services sent (name, *args), not run

    def follow(self, *, timeout: float, on_step: Callable[[], None] | None = None) -> str:
        """Follow the task's runs until finalizing/failed (or `timeout`), sending each commitRound as it is
        queued; `on_step` runs after every look. Returns the last state."""
        run_id, state = self.run.pk, "running"
        deadline = time.monotonic() + timeout
        while state not in ("finalizing", "failed") and time.monotonic() < deadline:
            state, run_id = services.training_follow(run_id=run_id, link=self.link, max_seconds=0)
            queued = ChainTx.objects.filter(function="commitRound", status=ChainTx.Status.QUEUED).order_by(
                "pk"
            )
            for tx in queued:
                assert chain_tx_process(tx_id=tx.pk).status == ChainTx.Status.CONFIRMED, tx.error
            if on_step is not None:
                on_step()
            time.sleep(2)
        return state

    def send_queued(self) -> None:
        """Send every queued ledger row in order, as the `chain` worker would (each must confirm)."""
        for tx in ChainTx.objects.filter(status=ChainTx.Status.QUEUED).order_by("pk"):
            assert chain_tx_process(tx_id=tx.pk).status == ChainTx.Status.CONFIRMED, (tx.function, tx.error)

    def finalize(self, *, timeout: float = 120) -> str:
        """Run the finalize chain in-process, sending its transactions (NFT mint, finalize) when it waits
        for them, then the beat's share claims; returns the chain's last state."""
        deadline = time.monotonic() + timeout
        state = "more"
        while state in ("more", "retry", "waiting") and time.monotonic() < deadline:
            state = services.finalize_advance(task_id=self.task.pk).state
            self.send_queued()
        from training.services.payouts import stakes_claim_pending

        stakes_claim_pending()
        self.send_queued()
        stakes_claim_pending()  # marks the confirmed claims; sends nothing more
        return state

    def kill_node(self, index: int) -> None:
        """SIGKILL a participant's SuperNode and its launcher/ClientApps (a machine losing power)."""
        handle = self.nodes[index]
        for proc in (handle.launcher, handle.supernode):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)

    def revive_nodes(self) -> list[int]:
        """What a participant's client does: start again a SuperNode that stopped (indexes restarted)."""
        from training.client.supernode import revive

        handles = dict(enumerate(self.nodes))
        restarted = revive(handles, backoff=1.0)
        self.nodes = [handles[i] for i in range(len(self.nodes))]
        return restarted

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.link.stop()


def start_platform_run(
    tmp_path: Path,
    settings,
    monkeypatch,
    anvil_url: str,
    *,
    nodes: int,
    rounds: int,
    min_participants: int,
    round_timeout: float = 180.0,
    heartbeat_timeout: float = 25,  # a loaded 2-core machine can take >12 s to start a ServerApp
    isolation: str = "subprocess",
    attacks: dict[int, str] | None = None,
) -> PlatformRun:
    """Everything up to a launched Flower run. The caller must `stop()` the result (also on failure).

    `attacks` maps a participant's index to a `training.attacks` name its SuperNode's ClientApp applies (a
    simulated malicious participant, as `manage.py simulate_participants --malicious` runs them)."""
    monkeypatch.setenv("BCFL_DATASET_CACHE", str(tmp_path / "datasets"))
    ds = datasets.load_dataset("digits")
    settings.CHAIN_RPC_URL, settings.CHAIN_ID = anvil_url, 31337
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.VAR_DIR = tmp_path / "var"
    settings.FLWR_HOME = tmp_path / "flwr_home"
    settings.SUPERLINK_ADDRESS = f"127.0.0.1:{sl.free_port()}"
    settings.TRAINING_HEARTBEAT_TIMEOUT = heartbeat_timeout
    settings.TRAINING_ROUND_TIMEOUT = round_timeout
    settings.TRAINING_RUN_CONFIG_EXTRA = {"dataset": "digits", "local-epochs": 3, "batch-size": 32}
    call_command("deploy_contracts", "--redeploy-missing")
    queued: list[tuple] = []
    monkeypatch.setattr(
        services.common, "enqueue", lambda name, *a, countdown=None: queued.append((name, *a))
    )

    task = create_digits_task(
        creator_key=DEV_KEYS[5], rounds=rounds, min_participants=min_participants, max_participants=nodes
    )
    from training.client import wallet as wallet_mod

    link = services.superlink()
    result = PlatformRun(task=task, link=link, run=None, queued=queued)  # type: ignore[arg-type]
    try:
        link.start()
        # participants join with signed Joins (all before any registration job runs: with min < max
        # participants, training starts at the min-th registered node and closes recruiting)
        keys, registrations = [], []
        for i in range(nodes):
            wallet = wallet_mod.create_key_file(tmp_path / f"w{i}.key")
            key, pub = sl.generate_node_key(tmp_path / "keys" / f"node{i}")
            x, y = datasets.partition(ds.x_train, ds.y_train, i, nodes, scheme="iid", seed=task.pk)
            summary = dataspec.data_summary(x, y)
            msg = eip712.join_typed_data(
                chain_id=31337,
                verifying_contract=chain.deployment_address("TaskRegistry"),
                task_id=task.chain_task_id,
                participant=wallet.address,
                node_public_key=pub.read_text(),
                data_summary=summary,
            )
            participation_join(
                task=task,
                user=UserFactory(username=wallet.address),
                participant=wallet.address,
                node_public_key=pub.read_text(),
                data_summary=summary,
                signature=eip712.sign_typed_data(msg, wallet.private_key),
            )
            name, reg_id = queued.pop()
            assert name == "node_register"
            keys.append(key)
            registrations.append(reg_id)
            result.wallets.append(wallet.address)
        # the registration jobs run; then each participant starts its SuperNode
        for i, (key, reg_id) in enumerate(zip(keys, registrations, strict=True)):
            reg = services.node_register(registration_id=reg_id, link=link)
            result.node_ids.append(int(reg.node_id))
            result.nodes.append(
                link.start_supernode(
                    sl.free_port(),
                    key,
                    {
                        "partition-id": i,
                        "num-partitions": nodes,
                        "dataset": "digits",
                        "key-path": str(tmp_path / f"w{i}.key"),
                        **({"attack": attacks[i]} if attacks and i in attacks else {}),
                    },
                    isolation=isolation,
                    log_path=tmp_path / f"supernode{i}.log",
                )
            )
        task.refresh_from_db()
        assert task.status == Task.Status.TRAINING, task.status
        result.run = services.training_run_launch(
            run_id=Run.objects.get(task=task).pk, link=link, follow=False
        )
    except BaseException:
        result.stop()
        raise
    return result


def create_digits_task(
    *, creator_key: str, rounds: int, min_participants: int, max_participants: int, title: str = "Digits e2e"
) -> Task:
    """A digits task (MLP, fedavg, 0.1 ETH reward, 5 % creator share, the digits test split as validation set)
    created and registered on chain by `creator_key`'s wallet: recruiting. Needs the contracts deployed and
    CHAIN_RPC_URL set."""
    ds = datasets.load_dataset("digits")
    buf = io.BytesIO()
    np.savez(buf, x=ds.x_test, y=ds.y_test)
    task = task_create(
        creator=UserFactory(username=Account.from_key(creator_key).address),
        title=title,
        model_kind="mlp",
        learning_rate=0.05,
        local_epochs=3,
        batch_size=32,
        feature_shape=[64],
        label_set=list(range(10)),
        min_samples_per_participant=10,
        rounds=rounds,
        min_participants=min_participants,
        max_participants=max_participants,
        aggregation_rule="fedavg",
        reward_wei=10**17,
        creator_share_bps=500,
        validation_file=ContentFile(buf.getvalue(), name="val.npz"),
        # as `manage.py create_task --dataset digits` says it: a bundled dataset's model accepts digit images
        validation_summary={**dataspec.data_summary(ds.x_test, ds.y_test), "dataset": "digits"},
    )
    task_registration_confirm(
        task=task, tx_hash=dev_send(task_create_call(task=task), creator_key), by=task.creator
    )
    task.refresh_from_db()
    return task
