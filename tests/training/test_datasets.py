import pickle

import numpy as np
import pytest

from bcfl_core import dataspec
from training import datasets


def test_digits_is_standardised_float32_with_fixed_split():
    # when
    ds = datasets.load_dataset("digits")
    # then
    assert ds.x_train.dtype == np.float32 and ds.feature_shape == (64,)
    assert len(ds.x_train) + len(ds.x_test) == 1797 and ds.num_classes == 10
    assert abs(float(ds.x_train.mean())) < 1e-3
    assert set(np.unique(ds.y_test)) == set(range(10))


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_tabular_sets_load(name):
    ds = datasets.load_dataset(name)
    assert ds.x_train.dtype == np.float32 and ds.x_train.ndim == 2 and ds.num_classes >= 2


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load_dataset("imagenet")


def test_iid_partition_sizes_cover_everything_once():
    # when
    parts = datasets.iid_partition(103, 4, seed=1)
    # then
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26]
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert all(
        np.array_equal(a, b) for a, b in zip(parts, datasets.iid_partition(103, 4, seed=1), strict=True)
    )
    assert not all(
        np.array_equal(a, b) for a, b in zip(parts, datasets.iid_partition(103, 4, seed=2), strict=True)
    )


@pytest.mark.parametrize("alpha", [0.05, 0.3, 10.0])
def test_dirichlet_partition_is_non_empty_disjoint_and_seeded(alpha):
    # given
    y = datasets.load_dataset("digits").y_train
    # when
    parts = datasets.dirichlet_partition(y, 10, alpha, seed=7)
    # then
    assert all(len(p) > 0 for p in parts)
    joined = np.concatenate(parts)
    assert len(joined) == len(y) == len(np.unique(joined))
    again = datasets.dirichlet_partition(y, 10, alpha, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_low_alpha_skews_labels():
    y = datasets.load_dataset("digits").y_train
    parts = datasets.dirichlet_partition(y, 5, 0.1, seed=0)
    # with strong skew most partitions miss some labels
    assert sum(len(np.unique(y[p])) < 10 for p in parts) >= 3


def test_partition_returns_rows_of_both_arrays():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    px, py = datasets.partition(x, y, 1, 2, seed=0)
    assert np.array_equal(px[:, 0] / 2, py)
    with pytest.raises(ValueError):
        datasets.partition(x, y, 2, 2)


def test_npz_loads_x_and_y(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.ones((4, 3)), y=np.array([0, 1, 1, 0]))
    x, y = dataspec.load_data_file(path)
    assert x.shape == (4, 3) and x.dtype == np.float32 and y.dtype == np.int64


def test_npz_with_pickled_objects_is_refused(tmp_path):
    # given: an object array, which numpy can only store by pickling
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    # when / then
    with pytest.raises(dataspec.DataFileError, match="pickled"):
        dataspec.load_npz(path)


def test_npz_that_is_a_raw_pickle_is_refused(tmp_path):
    path = tmp_path / "raw.npz"
    path.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(dataspec.DataFileError):
        dataspec.load_npz(path)


def test_npz_missing_keys_says_which(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, features=np.ones((2, 2)))
    with pytest.raises(dataspec.DataFileError, match="missing x, y"):
        dataspec.load_npz(path)


def test_csv_last_column_is_label_with_optional_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("f1,f2,label\n0.5,1,0\n2,3,1\n")
    x, y = dataspec.load_data_file(path)
    assert x.tolist() == [[0.5, 1.0], [2.0, 3.0]] and y.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1,2,0\n3,x,1\n", "line 2, column 2: .x. is not a number"),
        ("1,2,0\n3,1\n", "line 2: expected 3 columns"),
        ("", "empty"),
        ("1,2,0.5\n", "whole numbers"),
    ],
)
def test_csv_errors_are_plain(tmp_path, text, match):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(dataspec.DataFileError, match=match):
        dataspec.load_csv(path)


def test_other_file_types_and_missing_files_are_refused(tmp_path):
    with pytest.raises(dataspec.DataFileError, match="unsupported"):
        dataspec.load_data_file(tmp_path / "a.pkl")
    with pytest.raises(dataspec.DataFileError, match="does not exist"):
        dataspec.load_data_file(tmp_path / "a.npz")


def test_summary_and_spec_check():
    # given
    x = np.zeros((5, 64), dtype=np.float32)
    y = np.array([0, 1, 1, 9, 12])
    summary = dataspec.data_summary(x, y)
    # then
    assert summary == {"feature_shape": [64], "examples_per_label": {"0": 1, "1": 2, "9": 1, "12": 1}, "n": 5}
    assert (
        dataspec.check_against_spec(
            summary, {"feature_shape": [64], "labels": list(range(13)), "min_samples": 5}
        )
        == []
    )
    problems = dataspec.check_against_spec(
        summary, {"feature_shape": [8, 8], "labels": list(range(10)), "min_samples": 50}
    )
    assert problems == [
        "Each example should have shape 8×8, but your data has 64.",
        "Your data has labels 12 that are not in the task's label set (0, 1, 2, 3, 4, 5, 6, 7, 8, 9).",
        "The task needs at least 50 examples, but your data has 5.",
    ]


def test_prepared_split_cache_gives_identical_arrays(tmp_path, monkeypatch):
    # given
    monkeypatch.setenv("BCFL_DATASET_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets, "_CACHE", {})
    fresh = datasets.load_dataset("wine")
    assert list(tmp_path.glob("wine-*.npz"))
    monkeypatch.setattr(datasets, "_CACHE", {})
    # when
    cached = datasets.load_dataset("wine")
    # then
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(fresh, field), getattr(cached, field))
    assert cached.num_classes == fresh.num_classes == 3
