"""Aggregation rules of the registry: robust rules resist an outlier, none mutates the replies."""

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from tests.training.messages import train_reply
from training import defence
from training.flower_app import rules


def _reply(vec, node_id, num_examples=10):
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.asarray(vec, dtype=np.float32))}),
            "metrics": MetricRecord({"num-examples": num_examples}),
        }
    )
    return train_reply(node_id, content)


class _Strategy(FedAvg):
    def __init__(self, central_eval=None):
        super().__init__()
        self.central_eval = central_eval


@pytest.fixture
def replies():
    rng = np.random.default_rng(0)
    honest = [_reply(1.0 + rng.normal(scale=0.01, size=4), node_id=10 + i) for i in range(6)]
    return [*honest, _reply(np.full(4, 100.0), node_id=99)]


@pytest.mark.parametrize("name", ["multikrum", "trimmed_mean", "median", "validation_loo"])
def test_robust_rules_are_not_moved_by_an_outlier(replies, name):
    # given six honest updates near 1.0 and one at 100 (validation loss: distance to 1.0)
    strategy = _Strategy(central_eval=lambda arrays: {"loss": float(np.abs(arrays[0] - 1.0).mean())})
    before = [r.content["arrays"]["w"].numpy().copy() for r in replies]
    # when
    arrays, _ = defence.rule(name).load()(strategy, 1, replies)
    # then
    assert np.allclose(arrays["w"].numpy(), 1.0, atol=0.05)
    assert all(
        np.array_equal(r.content["arrays"]["w"].numpy(), b) for r, b in zip(replies, before, strict=True)
    )


def test_fedavg_is_moved_by_an_outlier(replies):
    arrays, _ = rules.fedavg(_Strategy(), 1, replies)
    assert arrays["w"].numpy().mean() > 10


def test_multikrum_and_validation_rule_say_what_they_left_out(replies):
    strategy = _Strategy(central_eval=lambda arrays: {"loss": float(np.abs(arrays[0] - 1.0).mean())})
    rules.multikrum(strategy, 1, replies)
    assert 99 in strategy.rule_exclusions and "Krum score" in strategy.rule_exclusions[99]
    rules.validation_loo(strategy, 1, replies)
    assert 99 in strategy.rule_exclusions and "validation loss" in strategy.rule_exclusions[99]


def test_every_registered_rule_loads_and_robust_ones_need_three_participants():
    for rule in defence.RULES.values():
        assert callable(rule.load())
        if rule.name != "fedavg":
            assert rule.entry.min_participants >= 3


@pytest.mark.parametrize("name", list(defence.RULES))
def test_the_flower_path_applies_the_registry_pure_rule(replies, name):
    # given the round's replies, a validation loss and contribution scores (the outlier's negative)
    loss = lambda arrays: float(np.abs(arrays[0] - 1.0).mean())  # noqa: E731
    strategy = _Strategy(central_eval=lambda arrays: {"loss": loss(arrays)})
    strategy.round_scores = {
        r.metadata.src_node_id: (-1.0 if r.metadata.src_node_id == 99 else 0.1) for r in replies
    }
    # when both paths run
    arrays, _ = defence.rule(name).load()(strategy, 1, replies)
    updates = [[r.content["arrays"]["w"].numpy()] for r in replies]
    pure = defence.rule(name).load_combine()(
        updates,
        [10.0] * len(replies),
        loss=loss,
        scores=[strategy.round_scores[r.metadata.src_node_id] for r in replies],
    )
    # then they agree on the aggregate and on what was left out
    assert np.allclose(arrays["w"].numpy(), pure.arrays[0], atol=1e-6)
    assert set(strategy.rule_exclusions) == {replies[i].metadata.src_node_id for i in pure.excluded}


def test_validation_shapley_leaves_out_negative_values_and_never_empties_a_round(replies):
    strategy = _Strategy()
    strategy.round_scores = {r.metadata.src_node_id: 0.1 for r in replies} | {99: -0.5}
    arrays, _ = rules.validation_shapley(strategy, 1, replies)
    assert np.allclose(arrays["w"].numpy(), 1.0, atol=0.05)
    assert list(strategy.rule_exclusions) == [99] and "Shapley value" in strategy.rule_exclusions[99]
    strategy.round_scores = {r.metadata.src_node_id: -1.0 for r in replies}
    arrays, _ = rules.validation_shapley(strategy, 1, replies)
    assert strategy.rule_exclusions == {} and arrays["w"].numpy().mean() > 10  # everyone: FedAvg
