"""The domain rules of a new task live in the service: `task_create` refuses what the form would refuse, so
`manage.py create_task` and scripts cannot bypass them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from tasks import catalog
from tasks.models import Task
from tasks.services import task_create, task_create_validate
from tests.tasks.factories import UserFactory, npz_bytes

pytestmark = pytest.mark.django_db

GOOD = {
    "title": "Digits",
    "model_kind": "mlp",
    "learning_rate": 0.01,
    "local_epochs": 1,
    "batch_size": 32,
    "feature_shape": [4],
    "label_set": [0, 1, 2],
    "min_samples_per_participant": 10,
    "rounds": 5,
    "min_participants": 2,
    "max_participants": 10,
    "aggregation_rule": "fedavg",
    "reward_wei": 10**18,
    "creator_share_bps": 1000,
    "licence_terms": "CC-BY-4.0",
}


def create(file: bytes | None = None, **overrides) -> Task:
    data = {**GOOD, **overrides}
    upload = ContentFile(file if file is not None else npz_bytes(), name="val.npz")
    return task_create(creator=UserFactory(), validation_file=upload, **data)


def refused_on(field: str, *, file: bytes | None = None, **overrides) -> str:
    with pytest.raises(ValidationError) as info:
        create(file, **overrides)
    assert Task.objects.count() == 0
    return " ".join(info.value.message_dict[field])


def test_good_task_is_created_and_its_summary_read_from_the_file(fake_deployment):
    # when: no validation summary given
    task = create()
    # then: the service read it from the file
    assert task.status == Task.Status.REGISTERING
    assert task.validation_summary["n"] == 40 and task.validation_summary["feature_shape"] == [4]


@pytest.mark.parametrize("rule", ["multikrum", "trimmed_mean", "median"])
def test_robust_rule_needs_its_catalog_minimum(rule):
    # given: the catalog entry says 3
    assert catalog.aggregation_rules.get(rule).min_participants == 3
    # then
    message = refused_on("min_participants", aggregation_rule=rule, min_participants=2, max_participants=5)
    assert "needs at least 3 participants per round" in message and "use FedAvg" in message


def test_robust_rule_with_enough_participants_is_fine(fake_deployment):
    assert create(aggregation_rule="multikrum", min_participants=3).aggregation_rule == "multikrum"


def test_unknown_rule_is_refused():
    assert "unknown aggregation rule 'krum2'" in refused_on("aggregation_rule", aggregation_rule="krum2")


def test_min_above_max_participants():
    assert "at least the minimum" in refused_on("max_participants", min_participants=5, max_participants=4)


@pytest.mark.parametrize(
    ("reward", "message"),
    [(0, "more than 0 ETH"), (-1, "more than 0 ETH"), (2**96, "too large for the escrow")],
)
def test_reward_range(reward, message):
    assert message in refused_on("reward_wei", reward_wei=reward)


@pytest.mark.parametrize("bps", [-1, 10_001])
def test_creator_share_range(bps):
    assert "between 0% and 100%" in refused_on("creator_share_bps", creator_share_bps=bps)


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (npz_bytes(shape=(5,)), "does not match the data spec"),
        (npz_bytes(labels=(0, 1, 7)), "does not match the data spec"),
        (npz_bytes(labels=(1,)), "at least two different labels"),
        (b"not a zip", "could not be read"),
    ],
)
def test_validation_set_must_fit_the_spec(file, message):
    assert message in refused_on("validation_file", file=file)


def test_validate_skips_rules_whose_input_is_missing():
    # a form whose reward field failed to parse still gets the participant rules checked
    with pytest.raises(ValidationError) as info:
        task_create_validate(aggregation_rule="median", min_participants=1, max_participants=1)
    assert set(info.value.message_dict) == {"min_participants"}
    task_create_validate()  # nothing given, nothing to check


def test_model_kind_choices_come_from_the_catalog():
    assert Task._meta.get_field("model_kind").choices == catalog.model_kind_choices()
    assert Task._meta.get_field("aggregation_rule").choices == catalog.aggregation_rule_choices()
    assert Task._meta.get_field("aggregation_rule").get_default() == catalog.aggregation_rules.default()
