"""The ClientApp's train reply: the signed ``bcfl`` record and attacks applied on the client."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

from bcfl_core import dataspec, eip712
from training import datasets, zoo
from training.client.wallet import create_key_file
from training.flower_app import client_app, task

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
RUN_CONFIG = {"local-epochs": 1, "dataset": "digits", "hidden": 16, "batch-size": 64}
CHAIN = {"chain-id": 31337, "registry-address": REGISTRY, "chain-task-id": 7}


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch):
    """flwr 1.42 builds messages for the task running in this process; pretend to be one."""
    from flwr.supercore.task_identity import TaskIdentity

    for attr, value in (("_task_id", 11), ("_run_id", 1), ("_node_id", 5)):
        monkeypatch.setattr(TaskIdentity, attr, value)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    ds = datasets.load_dataset("digits")
    path = tmp_path_factory.mktemp("data") / "mine.npz"
    np.savez(path, x=ds.x_train[:120], y=ds.y_train[:120])
    return path


def global_model(run_config):
    return task.model_spec({**RUN_CONFIG, **run_config}).build()


def call_train(node_config, run_config, server_round=3):
    rc = {**RUN_CONFIG, **run_config}
    model = global_model(rc)
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "config": ConfigRecord({"server-round": server_round, "lr": 0.05}),
        }
    )
    msg = Message(content=content, dst_node_id=5, message_type="train")
    ctx = Context(run_id=1, node_id=5, node_config=node_config, state=RecordDict(), run_config=rc)
    reply = client_app.train(msg, ctx)
    return zoo.get_arrays(model), reply


def test_signed_reply_recovers_to_wallet(tmp_path, data_file):
    wallet = create_key_file(tmp_path / "wallet.key")
    _, reply = call_train({"data-path": str(data_file), "key-path": str(tmp_path / "wallet.key")}, CHAIN)
    record = reply.content["bcfl"]
    arrays = reply.content["arrays"].to_numpy_ndarrays()
    assert record["wallet"] == wallet.address
    assert record["update-hash"] == "0x" + zoo.weights_hash(arrays)
    typed = eip712.update_typed_data(
        chain_id=31337, verifying_contract=REGISTRY, task_id=7, round=3, update_hash=record["update-hash"]
    )
    assert eip712.recover_signer(typed, record["signature"]) == wallet.address
    # another round's typed data does not verify with this signature
    other = eip712.update_typed_data(
        chain_id=31337, verifying_contract=REGISTRY, task_id=7, round=4, update_hash=record["update-hash"]
    )
    assert eip712.recover_signer(other, record["signature"]) != wallet.address
    assert reply.content["metrics"]["num-examples"] == 120


def test_no_bcfl_record_without_chain_id(data_file):
    _, reply = call_train({"data-path": str(data_file)}, {})
    assert "bcfl" not in reply.content


def test_no_bcfl_record_with_the_apps_default_chain_id_zero(data_file):
    # the app's pyproject defaults carry chain-id = 0: plain (non-platform) runs must not need a key
    _, reply = call_train(
        {"data-path": str(data_file)}, {"chain-id": 0, "registry-address": "", "chain-task-id": 0}
    )
    assert "bcfl" not in reply.content


def test_missing_key_path_is_an_error(data_file):
    with pytest.raises(ValueError, match="key-path"):
        call_train({"data-path": str(data_file)}, CHAIN)


def test_free_rider_returns_global_weights(data_file):
    global_arrays, reply = call_train({"data-path": str(data_file), "attack": "free_rider"}, {})
    out = reply.content["arrays"].to_numpy_ndarrays()
    assert all(np.array_equal(a, b) for a, b in zip(out, global_arrays, strict=True))


def test_sign_flip_and_honest_differ_in_direction(data_file):
    g, honest = call_train({"data-path": str(data_file)}, {})
    _, flipped = call_train({"data-path": str(data_file), "attack": "sign_flip"}, {})
    h = honest.content["arrays"].to_numpy_ndarrays()
    f = flipped.content["arrays"].to_numpy_ndarrays()
    np.testing.assert_allclose(f[0] - g[0], -(h[0] - g[0]), rtol=1e-4, atol=1e-5)


def test_label_flip_trains_on_flipped_labels(data_file, monkeypatch):
    seen = {}
    real_train = task.train

    def spy(model, x, y, **kw):
        seen["y"] = y
        return real_train(model, x, y, **kw)

    monkeypatch.setattr(task, "train", spy)
    call_train({"data-path": str(data_file), "attack": "label_flip"}, {})
    _, y = dataspec.load_data_file(data_file)
    assert seen["y"].tolist() == (9 - y).tolist()


def test_progress_file(tmp_path, data_file):
    progress = tmp_path / "progress.jsonl"
    call_train({"data-path": str(data_file), "progress-path": str(progress)}, {}, server_round=2)
    assert '"round": 2' in progress.read_text()
