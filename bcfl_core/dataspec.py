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


# Tried in this order: a numeric file never holds ";", TAB or "|" unless it is its delimiter, while a
# ";" file may hold decimal commas.
CSV_DELIMITERS = (";", "\t", "|", ",")


def load_csv(path: str | Path, *, has_header: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSV of numbers, one example per row, the label in the last column.

    The delimiter is detected among ``, ; TAB |`` (the one that splits every row into the same number of
    columns, at least two); with ``;`` a decimal comma (``0,5``) is read as a decimal point. The first row is
    a header only when it looks like one (``has_header=None``): no empty cell, and its cells are names
    rather than numbers (numbered column names such as ``0,1,…,63,label`` count as names). Any other row
    must be all numbers: an empty or non-numeric cell raises :class:`DataFileError` naming the line and the
    column (1-based), so no row is ever dropped silently.

    Returns ``(x, y)``: float32 ``(n, columns - 1)`` and int64 ``(n,)``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{path.name} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
        ) from exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise DataFileError(f"{path.name} is empty")
    delimiter = _csv_delimiter([line for _, line in lines[:50]], path.name)
    rows = [(n, row) for n, line in lines for row in csv.reader([line], delimiter=delimiter)]
    width = len(rows[0][1])
    if has_header is None:
        has_header = _looks_like_header(rows[0][1])
    if has_header:
        rows = rows[1:]
    if not rows:
        raise DataFileError(f"{path.name} has a header but no data rows")
    values = np.empty((len(rows), width), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        if len(row) != width:
            raise DataFileError(f"{path.name} line {line}: expected {width} columns, found {len(row)}")
        for col, cell in enumerate(row, start=1):
            number = _csv_number(cell, decimal_comma=delimiter == ";")
            if number is None:
                what = "empty cell" if not cell.strip() else f"{cell.strip()!r} is not a number"
                raise DataFileError(f"{path.name} line {line}, column {col}: {what}")
            values[i, col - 1] = number
    return _clean_xy(values[:, :-1], values[:, -1], path.name)


def _csv_number(cell: str, *, decimal_comma: bool = False) -> float | None:
    cell = cell.strip()
    if decimal_comma and cell.count(",") == 1 and "." not in cell:
        cell = cell.replace(",", ".")
    try:
        return float(cell)
    except ValueError:
        return None


def _csv_delimiter(lines: list[str], name: str) -> str:
    """The delimiter that splits every sampled line into the same number (≥ 2) of columns."""
    for delimiter in CSV_DELIMITERS:
        widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(widths) == 1 and widths.pop() >= 2:
            return delimiter
    for delimiter in CSV_DELIMITERS:  # ragged rows: the per-line column check names the first bad line
        if len(next(csv.reader(lines[:1], delimiter=delimiter))) >= 2:
            return delimiter
    raise DataFileError(
        f"{name} needs at least one feature column and a label column, separated by commas "
        "(semicolons, tabs and | are recognised too); found a single column on the first line"
    )


def _looks_like_header(row: list[str]) -> bool:
    cells = [c.strip() for c in row]
    if any(not c for c in cells):
        return False
    numeric = [_csv_number(c) is not None for c in cells]
    if not any(numeric):
        return True
    # Numbered column names ("0,1,...,63,label" or "1,...,64,label"): names, not an example.
    if not numeric[-1] and all(numeric[:-1]):
        idx = [float(c) for c in cells[:-1]]
        return idx == [float(i) for i in range(len(idx))] or idx == [float(i + 1) for i in range(len(idx))]
    return False


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
