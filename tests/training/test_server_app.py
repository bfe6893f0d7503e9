import json
import time

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Metadata, MetricRecord, RecordDict
from flwr.app.message import make_message
from flwr.app.message_type import MessageType

from tests.training.messages import train_reply
from training import zoo
from training.flower_app import server_app as sa
from training.flower_app import task


@pytest.fixture
def global_record():
    return ArrayRecord(zoo.build_model("mlp", (64,), 10, hidden=8, seed=0).state_dict())


def _reply(arrays, node_id=7, num_examples=10, record=None):
    content = RecordDict(
        {
            "arrays": record if record is not None else ArrayRecord(arrays),
            "metrics": MetricRecord({"num-examples": num_examples, "train-loss": 0.5}),
        }
    )
    return train_reply(node_id, content)


def test_valid_update_passes(global_record):
    arrays, reason = sa.validate_update(global_record, sa.reference_of(global_record), 10**6)
    assert reason == "" and len(arrays) == len(global_record)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda a: a.__setitem__(0, np.where(np.arange(a[0].size).reshape(a[0].shape) == 3, np.nan, a[0])),
            "NaN",
        ),
        (lambda a: a.__setitem__(1, np.full_like(a[1], np.inf)), "NaN or infinite"),
        (lambda a: a.__setitem__(0, np.zeros((3, 3), dtype=np.float32)), "shape"),
        (lambda a: a.__setitem__(0, a[0].astype(np.float64)), "dtype"),
        (lambda a: a.pop(), "keys differ"),
    ],
)
def test_bad_updates_are_rejected_with_a_reason(global_record, mutate, reason):
    # given
    reference = sa.reference_of(global_record)
    arrays = global_record.to_numpy_ndarrays()
    mutate(arrays)
    record = ArrayRecord(
        {k: sa.ArrayRecord([a])["0"] for k, a in zip(global_record.keys(), arrays, strict=False)}
    )
    # when
    result, why = sa.validate_update(record, reference, 10**7)
    # then
    assert result is None and reason in why


def test_oversized_update_is_rejected_before_reading(global_record):
    result, why = sa.validate_update(global_record, sa.reference_of(global_record), 100)
    assert result is None and "too large" in why


def test_strategy_drops_invalid_replies_and_averages_the_rest(global_record, tmp_path):
    # given: two honest nodes and one sending NaNs
    records = tmp_path / "r.jsonl"
    strategy = sa.ValidatingFedAvg(
        hook=sa.JsonlRoundHook(records),
        central_eval=lambda arrays: {"accuracy": 0.5, "loss": 1.0},
        min_available_nodes=1,
    )
    strategy._global = global_record
    base = global_record.to_numpy_ndarrays()
    honest_a = ArrayRecord(
        dict(zip(global_record.keys(), [ArrayRecord([a + 1])["0"] for a in base], strict=True))
    )
    honest_b = ArrayRecord(
        dict(zip(global_record.keys(), [ArrayRecord([a + 3])["0"] for a in base], strict=True))
    )
    bad = ArrayRecord(
        dict(zip(global_record.keys(), [ArrayRecord([a * np.nan])["0"] for a in base], strict=True))
    )
    replies = [_reply(None, 1, 10, honest_a), _reply(None, 2, 10, honest_b), _reply(None, 3, 10, bad)]
    # when
    arrays, metrics = strategy.aggregate_train(1, replies)
    # then: the mean of the honest ones, and a record per node
    np.testing.assert_allclose(arrays.to_numpy_ndarrays()[0], base[0] + 2, rtol=1e-6)
    line = json.loads(records.read_text())
    assert line["round"] == 1 and line["accuracy"] == 0.5
    by_node = {u["node_id"]: u for u in line["updates"]}
    assert by_node[1]["accepted"] and by_node[2]["accepted"] and not by_node[3]["accepted"]
    assert "NaN" in by_node[3]["reason"] and by_node[1]["norm"] > 0 and len(by_node[1]["sha256"]) == 64
    assert line["global_sha256"] == zoo.weights_hash(arrays.to_numpy_ndarrays())
    assert strategy.evaluate_fn(1, arrays)["accuracy"] == 0.5


def test_strategy_keeps_global_model_when_all_replies_are_rejected(global_record):
    strategy = sa.ValidatingFedAvg(min_available_nodes=1)
    strategy._global = global_record
    bad = _reply(None, 1, 0, global_record)  # zero examples
    arrays, metrics = strategy.aggregate_train(1, [bad])
    assert arrays is None and strategy.history[-1]["rejected"] == 1


def test_second_array_record_is_rejected_but_a_config_record_is_fine(global_record):
    strategy = sa.ValidatingFedAvg(min_available_nodes=1)
    strategy._global = global_record
    two_arrays = _reply(None, 1, 5, global_record)
    two_arrays.content["extra"] = ArrayRecord(global_record.to_numpy_ndarrays())
    with_info = _reply(None, 2, 5, global_record)
    with_info.content["info"] = ConfigRecord({"wallet": "0xabc"})
    _, accepted, rejected = strategy.screen([two_arrays, with_info])
    assert [r.node_id for r in accepted] == [2]
    assert rejected[0].node_id == 1 and rejected[0].reason.startswith("reply must carry")


def test_safetensors_output_has_matching_sha256(tmp_path, global_record):
    from safetensors.numpy import load_file

    path = tmp_path / "m.safetensors"
    digest = sa.save_safetensors(path, list(global_record.keys()), global_record.to_numpy_ndarrays())
    assert digest == sa.sha256_file(path)
    assert (tmp_path / "m.safetensors.sha256").read_text().split()[0] == digest
    loaded = load_file(str(path))
    assert list(loaded) == sorted(global_record.keys()) or set(loaded) == set(global_record.keys())


def test_local_training_on_digits_improves_accuracy():
    # given
    spec = task.model_spec({"seed": 0})
    model = spec.build()
    x, y, _, _ = task.client_data({"partition-id": 0, "num-partitions": 3}, {})
    x_test, y_test = task.server_test_data({})
    _, before = task.evaluate(model, x_test, y_test)
    # when
    loss = task.train(model, x, y, epochs=3, batch_size=32, lr=0.05, seed=0)
    # then
    _, after = task.evaluate(model, x_test, y_test)
    assert after > before + 0.3 and after > 0.85 and np.isfinite(loss)


def test_client_data_from_own_file(tmp_path):
    path = tmp_path / "own.npz"
    np.savez(path, x=np.ones((6, 64)), y=np.arange(6))
    x, y, xe, ye = task.client_data({"data-path": str(path)}, {})
    assert x.shape == (6, 64) and len(ye) == 6
    with pytest.raises(ValueError, match="data-path or partition-id"):
        task.client_data({}, {})


class _ScriptedGrid:
    """Replies become available after a number of pulls; records when each pull happened."""

    def __init__(self, replies_after: dict[str, int]):
        self.replies_after = replies_after
        self.pulls: list[float] = []

    def push_messages(self, messages):
        return list(self.replies_after)

    def pull_messages(self, message_ids):
        self.pulls.append(time.monotonic())
        ready = [m for m in message_ids if len(self.pulls) >= self.replies_after[m]]
        return [
            make_message(
                metadata=Metadata(
                    run_id=1,
                    message_id=f"r-{m}",
                    src_node_id=1,
                    dst_node_id=0,
                    reply_to_message_id=m,
                    group_id="1",
                    created_at=time.time(),
                    ttl=60,
                    message_type=MessageType.TRAIN,
                ),
                content=RecordDict(),
            )
            for m in ready
        ]

    def get_node_ids(self):
        return [1, 2]


def test_polling_grid_collects_every_reply_polling_at_its_interval():
    inner = _ScriptedGrid({"a": 1, "b": 3})
    grid = sa.PollingGrid(inner, poll_interval=0.05)

    replies = list(grid.send_and_receive([], timeout=10))

    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["a", "b"]
    assert len(inner.pulls) == 3  # stops as soon as the last reply is in
    gaps = [b - a for a, b in zip(inner.pulls, inner.pulls[1:], strict=False)]
    assert all(g < 1.0 for g in gaps)  # not Flower's 3 s
    assert grid.get_node_ids() == [1, 2]  # everything else is the wrapped grid's


def test_polling_grid_returns_what_arrived_when_the_timeout_passes():
    inner = _ScriptedGrid({"a": 1, "never": 10**9})
    replies = list(sa.PollingGrid(inner, poll_interval=0.05).send_and_receive([], timeout=0.3))
    assert [r.metadata.reply_to_message_id for r in replies] == ["a"]
    assert 2 <= len(inner.pulls) <= 10


def test_polling_grid_refuses_a_non_positive_interval():
    with pytest.raises(ValueError, match="reply-poll-interval"):
        sa.PollingGrid(_ScriptedGrid({}), poll_interval=0)


def test_server_app_loads_as_flower_loads_it_from_the_app_bundle(tmp_path):
    """Flower unpacks the FAB and imports ``server_app`` as a top-level module with the bundle on sys.path:
    every part of the app must import its siblings that way too, and no Django comes along."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    # given: the app's files alone in a directory, as in an unpacked FAB
    app_dir = Path(sa.__file__).parent
    bundle = tmp_path / "fab"
    bundle.mkdir()
    for path in app_dir.glob("*.py"):
        shutil.copy(path, bundle / path.name)
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(bundle)!r})\n"
        "import server_app\n"
        "print(server_app.ValidatingFedAvg.__module__, server_app.save_safetensors.__module__)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('django', 'training.flower_app.s'))))\n"
    )
    # when
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # then: the bundle's own modules, not the repository's package, and no Django
    assert out.stdout.splitlines() == ["strategy checkpoints", "[]"]


def test_the_round_scores_reach_the_rule_and_the_detection_before_aggregation(global_record):
    # given the validation Shapley rule and a scorer that says node 3 harms (below −0.5 × the loss 1.0)
    def scorer(server_round, accepted, rejected, global_before, update_arrays, central_eval):
        return {u.node_id: (-0.8 if u.node_id == 3 else 0.2) for u in accepted}

    class Hook:
        def on_round(self, task_round, accepted, rejected, global_np, metrics):
            self.accepted = accepted

    hook = Hook()
    strategy = sa.ValidatingFedAvg(
        hook=hook,
        central_eval=lambda arrays: {"accuracy": 0.5, "loss": 1.0},
        min_available_nodes=1,
        aggregation_rule="validation_shapley",
        scorer=scorer,
    )
    strategy._global = global_record
    base = global_record.to_numpy_ndarrays()
    shifted = [
        ArrayRecord(dict(zip(global_record.keys(), [ArrayRecord([a + s])["0"] for a in base], strict=True)))
        for s in (1, 3, 50)
    ]
    replies = [_reply(None, n, 10, rec) for n, rec in zip((1, 2, 3), shifted, strict=True)]
    # when
    arrays, _ = strategy.aggregate_train(1, replies)
    # then node 3 is left out of the aggregate, and its flag counts against it
    np.testing.assert_allclose(arrays.to_numpy_ndarrays()[0], base[0] + 2, rtol=1e-6)
    assert set(strategy.rule_exclusions) == {3} and strategy.round_scores[3] == -0.8
    flags = {u.node_id: {f["signal"]: f for f in u.flags} for u in hook.accepted}
    assert (
        flags[3]["negative_contribution"]["counts"] and flags[3]["negative_contribution"]["threshold"] == -0.5
    )
    assert "negative_contribution" not in flags[1]
