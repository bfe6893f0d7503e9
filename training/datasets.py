"""Bundled datasets (no download) and partitioners.

Participants' own files and the data-spec check live in :mod:`bcfl_core.dataspec`.

Importable without Django. Files are read with ``allow_pickle=False``: never unpickle.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEST_FRACTION = 0.2
SPLIT_SEED = 2024


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Statistics from the training part only, so the test split stays held out.
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def _split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)


_LOADERS = {
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
}
BUNDLED_DATASETS = tuple(_LOADERS)

_CACHE: dict[str, Dataset] = {}
_REPO_DIR = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Where prepared splits are kept: ``$BCFL_DATASET_CACHE`` or ``<var>/cache/datasets``."""
    default = Path(os.environ.get("BCFL_VAR_DIR", _REPO_DIR / "var")) / "cache" / "datasets"
    return Path(os.environ.get("BCFL_DATASET_CACHE", default))


def _cache_path(name: str) -> Path:
    return cache_dir() / f"{name}-split{SPLIT_SEED}-test{int(TEST_FRACTION * 100)}.npz"


def load_dataset(name: str) -> Dataset:
    """A bundled scikit-learn dataset, standardised float32, with a fixed stratified 80/20 split.

    digits: 1797×64, 10 classes. breast_cancer: 569×30, 2 classes. wine: 178×13, 3 classes.
    The prepared split is cached as a plain .npz: every ClientApp process loads it, and
    importing scikit-learn costs seconds of CPU each time.
    """
    if name in _CACHE:
        return _CACHE[name]
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; bundled: {', '.join(BUNDLED_DATASETS)}")
    path = _cache_path(name)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as d:
                ds = Dataset(
                    name, d["x_train"], d["y_train"], d["x_test"], d["y_test"], int(d["num_classes"])
                )
            _CACHE[name] = ds
            return ds
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass  # rebuild below
    ds = _prepare(name)
    _CACHE[name] = ds
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                x_train=ds.x_train,
                y_train=ds.y_train,
                x_test=ds.x_test,
                y_test=ds.y_test,
                num_classes=np.int64(ds.num_classes),
            )
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed
    return ds


def _raw_split(name: str) -> tuple[np.ndarray, ...]:
    """(x_train, x_test, y_train, y_test) in the dataset's own units, before standardisation."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, _LOADERS[name])()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    return _split(x, y)


def _prepare(name: str) -> Dataset:
    x_tr, x_te, y_tr, y_te = _raw_split(name)
    x_tr, x_te = _standardise(x_tr, x_te)
    return Dataset(name, x_tr, y_tr, x_te, y_te, int(max(y_tr.max(), y_te.max())) + 1)


@dataclass(frozen=True)
class Scaling:
    """How a bundled dataset's own units map to the standardised features its models are trained on:
    ``(x - mean) / std`` per feature (float64 arrays of the feature count; a constant feature has std 1)."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.std).astype(np.float32)


_SCALING: dict[str, Scaling] = {}


def scaling(name: str) -> Scaling:
    """The standardisation `load_dataset(name)` applied (statistics of the training split, in the dataset's
    own units, e.g. digits pixels 0..16), so new inputs in those units can be fed to a model trained on it."""
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; bundled: {', '.join(BUNDLED_DATASETS)}")
    if name not in _SCALING:
        x_tr = _raw_split(name)[0]
        std = x_tr.std(axis=0)
        std[std == 0] = 1.0
        _SCALING[name] = Scaling(x_tr.mean(axis=0), std)
    return _SCALING[name]


def feature_names(name: str) -> list[str]:
    """The bundled dataset's feature names (digits: ``pixel_0_0`` … ``pixel_7_7``, row by row)."""
    import sklearn.datasets

    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; bundled: {', '.join(BUNDLED_DATASETS)}")
    return [str(n) for n in getattr(sklearn.datasets, _LOADERS[name])().feature_names]


# --- partitioners -------------------------------------------------------------------------------


def iid_partition(n: int, num_partitions: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffle ``range(n)`` and cut it into ``num_partitions`` near-equal index arrays."""
    if num_partitions < 1 or num_partitions > n:
        raise ValueError(f"cannot split {n} examples into {num_partitions} non-empty partitions")
    rng = np.random.default_rng(seed)
    return [np.sort(p) for p in np.array_split(rng.permutation(n), num_partitions)]


def dirichlet_partition(
    y: np.ndarray, num_partitions: int, alpha: float, seed: int = 0, min_size: int = 1
) -> list[np.ndarray]:
    """Label-skewed non-IID split: each class is spread over partitions by Dirichlet(alpha) shares.

    Redraws (up to 100 times) until every partition has at least ``min_size`` examples, then, if
    still needed, moves examples from the largest partitions so none is empty.
    """
    y = np.asarray(y)
    n = len(y)
    if num_partitions < 1 or num_partitions * min_size > n:
        raise ValueError(f"cannot split {n} examples into {num_partitions} partitions of ≥{min_size}")
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    parts: list[list[int]] = []
    for _ in range(100):
        parts = [[] for _ in range(num_partitions)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(num_partitions, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for p, chunk in enumerate(np.split(idx, cuts)):
                parts[p].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            break
    else:
        for p in parts:
            while len(p) < min_size:
                donor = max(parts, key=len)
                p.append(donor.pop())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def partition(
    x: np.ndarray,
    y: np.ndarray,
    partition_id: int,
    num_partitions: int,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """One partition of local arrays; every caller with the same arguments gets the same split."""
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition-id {partition_id} outside 0..{num_partitions - 1}")
    if scheme == "iid":
        parts = iid_partition(len(y), num_partitions, seed)
    elif scheme == "dirichlet":
        parts = dirichlet_partition(y, num_partitions, alpha, seed)
    else:
        raise ValueError(f"unknown partition scheme {scheme!r}; use 'iid' or 'dirichlet'")
    idx = parts[partition_id]
    return x[idx], y[idx]
