"""Replies produced by the real ClientApp under the invalid-update attacks are rejected by the ServerApp's
screening with the right reason, while an honest reply in the same round is accepted."""

from __future__ import annotations

import pytest
from flwr.app import ArrayRecord

from tests.training.client.test_client_app import CHAIN, REGISTRY, call_train, data_file  # noqa: F401
from training import zoo
from training.client.wallet import create_key_file
from training.flower_app import server_app as sa
from training.flower_app import task

MAX_BYTES = 50_000  # the test model (hidden 16) is ~5 kB; the oversized reply is padded to 0.1 MiB


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch):
    from flwr.supercore.task_identity import TaskIdentity

    for attr, value in (("_task_id", 11), ("_run_id", 1), ("_node_id", 5)):
        monkeypatch.setattr(TaskIdentity, attr, value)


def screen(tmp_path, data_file, attack):  # noqa: F811
    wallet = create_key_file(tmp_path / "wallet.key")
    node_config = {"data-path": str(data_file), "key-path": str(tmp_path / "wallet.key")}
    if attack:
        node_config["attack"] = attack
    global_arrays, reply = call_train(node_config, CHAIN, server_round=3)
    node_id = int(reply.metadata.src_node_id)
    ctx = sa.SigningContext(
        participants={node_id: wallet.address}, chain_id=31337, registry_address=REGISTRY, chain_task_id=7
    )
    strategy = sa.ValidatingFedAvg(signing=ctx, min_available_nodes=1, max_update_bytes=MAX_BYTES)
    model = task.model_spec({"local-epochs": 1, "dataset": "digits", "hidden": 16}).build()
    zoo.set_arrays(model, global_arrays)
    strategy._global = ArrayRecord(model.state_dict())
    return strategy.screen([reply], 3), wallet


def test_honest_reply_is_accepted(tmp_path, data_file):  # noqa: F811
    (kept, accepted, rejected), wallet = screen(tmp_path, data_file, "")
    assert len(kept) == 1 and not rejected and accepted[0].wallet == wallet.address


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("nan", "net.1.weight: contains NaN or infinite values"),
        ("wrong_shape", "net.1.weight: shape (15, 64) != (16, 64)"),
        ("oversized:mb=0.1", "update too large: "),
        ("bad_signature", "bad signature: signed by 0x"),
    ],
)
def test_invalid_update_is_rejected_with_reason(tmp_path, data_file, attack, reason):  # noqa: F811
    (kept, accepted, rejected), wallet = screen(tmp_path, data_file, attack)
    assert not kept and not accepted
    assert rejected[0].reason.startswith(reason), rejected[0].reason
    assert not rejected[0].accepted and rejected[0].wallet == wallet.address
