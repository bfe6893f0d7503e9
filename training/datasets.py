"""Bundled datasets (no download), partitioners, participants' own files, data-spec checks.

Importable without Django. Files are read with ``allow_pickle=False``: never unpickle.
"""

from __future__ import annotations

import csv
import os
import tempfile
import zipfile
from collections.abc import Sequence
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


class DataFileError(ValueError):
    """A participant's data file cannot be used; the message says why in plain words."""


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


def _prepare(name: str) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, _LOADERS[name])()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = _split(x, y)
    x_tr, x_te = _standardise(x_tr, x_te)
    return Dataset(name, x_tr, y_tr, x_te, y_te, int(y.max()) + 1)


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


# --- participants' own files --------------------------------------------------------------------


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``.npz`` with arrays ``x`` (features) and ``y`` (integer labels). Object arrays are refused."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise DataFileError(
                    f"{path.name} must contain arrays named x and y; missing {', '.join(missing)} "
                    f"(found: {', '.join(data.files) or 'nothing'})"
                )
            x, y = data["x"], data["y"]
    except DataFileError:
        raise
    except ValueError as exc:
        # numpy raises ValueError("Object arrays cannot be loaded when allow_pickle=False").
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataFileError(
                f"{path.name} holds Python objects (pickled data); only plain numeric arrays are accepted"
            ) from exc
        raise DataFileError(f"{path.name} is not a readable .npz file: {exc}") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFileError(f"{path.name} is not a readable .npz file: {exc}") from exc
    return _clean_xy(x, y, path.name)


def load_csv(path: str | Path, *, has_header: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSV of numbers; the last column is the label. A non-numeric first row is taken as a header."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {path} does not exist")
    rows: list[list[str]] = []
    with path.open(newline="") as f:
        for row in csv.reader(f):
            if row and any(cell.strip() for cell in row):
                rows.append(row)
    if not rows:
        raise DataFileError(f"{path.name} is empty")
    if has_header is None:
        try:
            [float(c) for c in rows[0]]
            has_header = False
        except ValueError:
            has_header = True
    if has_header:
        rows = rows[1:]
    if not rows:
        raise DataFileError(f"{path.name} has a header but no data rows")
    width = len(rows[0])
    if width < 2:
        raise DataFileError(f"{path.name} needs at least one feature column and a label column")
    values = np.empty((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        line = i + 1 + int(bool(has_header))
        if len(row) != width:
            raise DataFileError(f"{path.name} line {line}: expected {width} columns, found {len(row)}")
        try:
            values[i] = [float(c) for c in row]
        except ValueError as exc:
            raise DataFileError(f"{path.name} line {line}: not a number ({exc})") from exc
    return _clean_xy(values[:, :-1], values[:, -1], path.name)


def load_data_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A participant's own data by extension: ``.npz`` or ``.csv``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".csv":
        return load_csv(path)
    raise DataFileError(f"unsupported data file type {suffix or '(none)'}; use .npz or .csv")


def _clean_xy(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise DataFileError(f"{name}: x and y must be numeric arrays (got {x.dtype} and {y.dtype})")
    if x.ndim < 2:
        raise DataFileError(f"{name}: x must have one row per example (got shape {x.shape})")
    if y.ndim != 1 or len(y) != len(x):
        raise DataFileError(f"{name}: y must be one label per row of x (x has {len(x)}, y shape {y.shape})")
    if not np.all(np.isfinite(x)):
        raise DataFileError(f"{name}: x contains NaN or infinite values")
    if not np.all(np.isfinite(y)) or not np.all(np.equal(np.mod(y, 1), 0)):
        raise DataFileError(f"{name}: labels in y must be whole numbers")
    return x.astype(np.float32), y.astype(np.int64)


# --- data-spec check ----------------------------------------------------------------------------


def data_summary(x: np.ndarray, y: np.ndarray) -> dict:
    """What a participant's data looks like, without revealing it."""
    labels, counts = np.unique(np.asarray(y), return_counts=True)
    return {
        "feature_shape": [int(d) for d in np.asarray(x).shape[1:]],
        "examples_per_label": {str(int(lbl)): int(c) for lbl, c in zip(labels, counts, strict=True)},
        "n": int(len(y)),
    }


def check_against_spec(summary: dict, spec: dict) -> list[str]:
    """Problems with ``summary`` against a task's data spec, in plain words; empty = fits.

    ``spec`` keys (all optional): ``feature_shape`` (list of ints), ``labels`` (list of allowed
    labels), ``min_samples`` (int).
    """
    problems: list[str] = []
    want_shape = spec.get("feature_shape")
    if want_shape is not None and list(summary["feature_shape"]) != [int(d) for d in want_shape]:
        problems.append(
            f"Each example should have shape {_shape(want_shape)}, but your data has "
            f"{_shape(summary['feature_shape'])}."
        )
    labels = spec.get("labels")
    if labels is not None:
        allowed = {str(int(lbl)) for lbl in labels}
        outside = sorted((lbl for lbl in summary["examples_per_label"] if lbl not in allowed), key=int)
        if outside:
            problems.append(
                f"Your data has labels {', '.join(outside)} that are not in the task's label set "
                f"({', '.join(str(int(lbl)) for lbl in labels)})."
            )
    min_samples = spec.get("min_samples")
    if min_samples is not None and summary["n"] < int(min_samples):
        problems.append(
            f"The task needs at least {int(min_samples)} examples, but your data has {summary['n']}."
        )
    return problems


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(int(d)) for d in shape) if len(shape) else "scalar"
