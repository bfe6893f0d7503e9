"""The data spec of a task: loading a participant's own file, its summary, the check against a spec.

Django-free and torch-free (numpy only): used by the participant client, the ServerApp, the task form and
the services alike. Files are read with ``allow_pickle=False``: never unpickle.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class DataFileError(ValueError):
    """A participant's data file cannot be used; the message says why in plain words."""


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
