"""Every field of the create form explains what to fix; the validation set must match the spec."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tasks.forms import TaskCreateForm
from tests.tasks.factories import npz_bytes

VALID = {
    "title": "Digits",
    "description": "",
    "model_kind": "mlp",
    "learning_rate": "0.01",
    "local_epochs": "1",
    "batch_size": "32",
    "feature_shape": "4",
    "label_set": "0-2",
    "min_samples_per_participant": "10",
    "rounds": "5",
    "min_participants": "2",
    "max_participants": "10",
    "aggregation_rule": "fedavg",
    "reward_eth": "1.5",
    "creator_share_percent": "10",
    "licence_terms": "CC-BY-4.0",
}


def make_form(overrides=None, file=None):
    data = {**VALID, **(overrides or {})}
    upload = file if file is not None else SimpleUploadedFile("val.npz", npz_bytes())
    return TaskCreateForm(data, {"validation_file": upload} if upload else {})


def test_valid_form():
    form = make_form()
    assert form.is_valid(), form.errors
    kwargs = form.service_kwargs()
    assert kwargs["reward_wei"] == 15 * 10**17
    assert kwargs["creator_share_bps"] == 1000
    assert kwargs["feature_shape"] == [4]
    assert kwargs["label_set"] == [0, 1, 2]
    assert kwargs["validation_summary"]["n"] == 40


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "Give the task a title"),
        ("title", "ab", "at least 3 characters"),
        ("model_kind", "transformer", "Select a valid choice"),
        ("learning_rate", "0", "greater than 0 and at most 1"),
        ("learning_rate", "1.5", "greater than 0 and at most 1"),
        ("learning_rate", "fast", "must be a number"),
        ("local_epochs", "0", "between 1 and 100"),
        ("batch_size", "0", "between 1 and 100,000"),
        ("min_samples_per_participant", "0", "at least 1"),
        ("feature_shape", "a,b", "whole numbers separated by commas"),
        ("feature_shape", "0", "at least 1"),
        ("feature_shape", "", "required"),
        ("label_set", "5", "at least two labels"),
        ("label_set", "9-0", "goes backwards"),
        ("label_set", "cat,dog", "is not a label"),
        ("rounds", "0", "between 1 and 1000"),
        ("rounds", "1001", "between 1 and 1000"),
        ("min_participants", "0", "must be 1 to 10,000"),
        ("max_participants", "1", "at least the minimum"),
        ("reward_eth", "0", "more than 0 ETH"),
        ("reward_eth", "-1", "more than 0 ETH"),
        ("reward_eth", "0.0000000000000000001", "at most 18 decimal places"),
        ("reward_eth", "lots", "as a number"),
        ("reward_eth", "100000000000", "too large"),
        ("creator_share_percent", "101", "between 0% and 100%"),
        ("creator_share_percent", "12.345", "at most 2 decimals"),
        ("licence_terms", "", "licence terms"),
    ],
)
def test_each_field_explains(field, value, message):
    form = make_form({field: value})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


def test_robust_rule_needs_three_participants():
    form = make_form({"aggregation_rule": "multikrum", "min_participants": "2"})
    assert not form.is_valid()
    assert "at least 3 participants" in " ".join(form.errors["min_participants"])


def test_reward_with_18_decimals_is_fine():
    form = make_form({"reward_eth": "0.000000000000000001"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["reward_eth"] == 1


def test_feature_shape_and_label_formats():
    upload = SimpleUploadedFile("val.npz", npz_bytes(shape=(1, 2, 2)))
    form = make_form({"feature_shape": "1,2,2", "label_set": "0,1,2"}, file=upload)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["feature_shape"] == [1, 2, 2]


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("val.txt", b"1,2"), ".npz or .csv"),
        (SimpleUploadedFile("val.npz", npz_bytes(shape=(5,))), "does not match the data spec"),
        (SimpleUploadedFile("val.npz", npz_bytes(labels=(0, 1, 7))), "does not match the data spec"),
        (SimpleUploadedFile("val.npz", b"not a zip"), "could not be read"),
        (SimpleUploadedFile("val.csv", b"1,2,3,4,0\n1,2,3,x,1\n"), "could not be read"),
        (SimpleUploadedFile("val.npz", npz_bytes(labels=(1,))), "at least two different labels"),
    ],
)
def test_validation_set_problems(upload, message):
    form = make_form(file=upload)
    assert not form.is_valid()
    assert message in " ".join(form.errors["validation_file"]), form.errors


def test_validation_set_with_pickled_objects_is_refused():
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}] * 4, dtype=object), y=np.array([0, 1, 0, 1]))
    form = make_form(file=SimpleUploadedFile("val.npz", buf.getvalue()))
    assert not form.is_valid()
    assert "could not be read" in " ".join(form.errors["validation_file"])


def test_csv_validation_set():
    rows = "".join(f"{i},{i},{i},{i},{i % 3}\n" for i in range(12)).encode()
    form = make_form(file=SimpleUploadedFile("val.csv", rows))
    assert form.is_valid(), form.errors


def test_validation_set_size_limit(settings):
    settings.TASK_VALIDATION_MAX_BYTES = 100
    form = make_form()
    assert not form.is_valid()
    assert "the limit is" in " ".join(form.errors["validation_file"])


def test_missing_validation_set():
    form = TaskCreateForm(VALID, {})
    assert not form.is_valid()
    assert "Upload the validation set" in " ".join(form.errors["validation_file"])
