"""Fixtures: tasks and participations from the task tests, a fake SuperLink, records written like the ServerApp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from bcfl_core import eip712
from tasks.models import Participation
from tasks.services import identity_for_wallet
from tests.tasks.factories import REGISTRY, TaskFactory, UserFactory, fake_deployments, summary  # noqa: F401
from tests.training.factories import NodeRegistrationFactory


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


def account(i: int):
    return Account.from_key(keccak(text=f"bcfl-training-test-{i}"))


class FakeSuperLink:
    """Stands in for training.superlink.SuperLink: records calls, scripted run statuses, fails on demand."""

    connection = "bcfl"

    def __init__(self):
        self.nodes: dict[int, dict] = {}
        self.runs: dict[int, dict] = {}
        self.next_node = 100
        self.next_run = 1
        self.fail_register = False
        self.statuses: dict[int, str] = {}

    def register_node(self, public_key, name):
        from training.superlink import FlowerError

        if self.fail_register:
            raise FlowerError("boom")
        for n in self.nodes.values():
            if n["key"] == public_key and n["status"] != "unregistered":
                raise FlowerError("already registered")
        self.next_node += 1
        self.nodes[self.next_node] = {"key": public_key, "name": name, "status": "online"}
        return self.next_node

    def unregister_node(self, node_id):
        self.nodes[int(node_id)]["status"] = "unregistered"

    def list_nodes(self):
        return [
            {"node-id": str(k), "owner-name": v["name"], "status": v["status"], "public-key": v["key"]}
            for k, v in self.nodes.items()
        ]

    def start_run(self, app_dir, run_config):
        rid = self.next_run
        self.next_run += 1
        self.runs[rid] = dict(run_config)
        self.statuses[rid] = "running"
        return rid

    def run_status(self, run_id):
        return self.statuses[int(run_id)]

    def stop_run(self, run_id):
        self.statuses[int(run_id)] = "finished:stopped"

    def flwr_json(self, *args):
        return {"runs": [{"run-id": str(k), "status": v} for k, v in self.statuses.items()]}


@pytest.fixture
def link():
    return FakeSuperLink()


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.TRAINING_HEARTBEAT_TIMEOUT = 60
    return settings.VAR_DIR


def node_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1()).public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def participate(task, acct, *, registered_node: int | None = None) -> Participation:
    """A participation (as participation_join leaves it) and optionally its registered node."""
    user = UserFactory(username=acct.address)
    key = node_key()
    p = Participation.objects.create(
        task=task,
        user=user,
        wallet=acct.address,
        identity=identity_for_wallet(address=acct.address),
        node_public_key=key,
        node_public_key_hash=eip712.node_public_key_hash(key),
        data_summary=summary(),
        data_summary_hash="0x",
        join_signature="0x",
    )
    if registered_node is not None:
        NodeRegistrationFactory(
            public_key_hash=p.node_public_key_hash,
            public_key=key,
            wallet=acct.address,
            identity=p.identity,
            node_id=registered_node,
        )
    return p


def sign_update(acct, task, rnd: int, sha: str, chain_id=31337, registry=REGISTRY) -> str:
    msg = eip712.update_typed_data(
        chain_id=chain_id,
        verifying_contract=registry,
        task_id=task.chain_task_id,
        round=rnd,
        update_hash="0x" + sha,
    )
    return eip712.sign_typed_data(msg, acct.key.hex())


def write_round(
    path: Path,
    task,
    rnd: int,
    updates: list[tuple[int, object, bool]],
    *,
    ckpt_dir: Path | None = None,
    partial_tail: str = "",
) -> dict:
    """Append one round line as JsonlRoundHook writes it; updates: (node_id, account, accepted)."""
    import numpy as np

    from training import zoo
    from training.flower_app.server_app import save_safetensors

    arrays = [np.full((2, 2), rnd, dtype=np.float32)]
    line = {
        "round": rnd,
        "global_sha256": zoo.weights_hash(arrays),
        "accuracy": 0.5 + rnd / 100,
        "loss": 1.0 / rnd,
        "metrics": {},
        "time": 0.0,
        "aggregation_rule": "fedavg",
        "updates": [],
    }
    if ckpt_dir is not None:
        ck = ckpt_dir / f"round-{rnd:04d}.safetensors"
        line["checkpoint"], line["checkpoint_sha256"] = str(ck), save_safetensors(ck, ["w"], arrays)
    for node_id, acct, accepted in updates:
        sha = keccak(text=f"{rnd}-{node_id}").hex()
        line["updates"].append(
            {
                "node_id": node_id,
                "sha256": sha,
                "num_examples": 10,
                "norm": 1.0,
                "accepted": accepted,
                "reason": "" if accepted else "bad signature",
                "metrics": {},
                "wallet": acct.address,
                "signature": sign_update(acct, task, rnd, sha),
                "score": 1.0 if accepted else 0.0,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(line) + "\n" + partial_tail)
    return line


@pytest.fixture(autouse=True)
def _fresh_status_poll_clock():
    """The follower asks Flower for a run's status at most every TRAINING_STATUS_POLL_SECONDS per process;
    run primary keys repeat across tests (rolled back), so every test starts with a clean clock."""
    from training.services import follow

    follow._STATUS_CHECKED.clear()
    yield
    follow._STATUS_CHECKED.clear()


def chain_knows(chain, task, *, committed: int) -> None:
    """The fake chain's TaskRegistry state for a task made by factories: created with its reward, `committed`
    rounds committed, open (what `contracts.fake_handlers` checks before finalize/fail)."""
    chain.tasks[task.chain_task_id] = {
        "creator": task.creator.username,
        "reward": int(task.reward_wei),
        "rounds": int(task.rounds),
        "committed": committed,
        "status": "open",
        "cancelled": False,
    }


@pytest.fixture
def chain_inline(fake_chain, monkeypatch):
    """The fake chain, and the settlement's ledger rows mined as soon as they are recorded (no chain worker
    in these tests: the row is processed in-process, as the `chain` worker would)."""
    from contracts.services import chain_tx_enqueue, chain_tx_process
    from training.services import settlement

    def enqueue_and_mine(**kwargs):
        tx = chain_tx_enqueue(**kwargs)
        return chain_tx_process(tx_id=tx.id)

    monkeypatch.setattr(settlement, "chain_tx_enqueue", enqueue_and_mine)
    return fake_chain
