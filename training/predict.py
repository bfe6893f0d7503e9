"""Predictions from a task's final model: uploaded inputs checked against the task's data spec, then run with
onnxruntime on the model's ONNX export (`training.services.exports`). No web concerns: an API view reads the
upload's bytes, calls `predict` and turns `PredictInputError` into a 400 with its ``code`` and ``message``
(`ModelNotReady` into a 409).

Inputs (``bytes`` of an upload, or ``str`` of CSV text), at most `MAX_INPUT_BYTES` (1 MB):

- a PNG or JPEG image, for tasks trained on the bundled ``digits`` data: converted to grayscale, resized to
  8×8 (area averaging), scaled to the dataset's pixel range 0..16 with the ink as the high value (sklearn's
  digits are light strokes on black; an image whose four corner pixels are light on average after resizing
  is taken as dark ink on a light background and inverted), then standardised as the training data was;
- CSV rows (``,`` ``;`` TAB or ``|``), one example per row with exactly the spec's feature count of numbers,
  at most `MAX_ROWS` rows, with an optional header row: for a bundled dataset its feature names in order (e.g.
  ``pixel_0_0`` … ``pixel_7_7``), else any names. Values of a bundled dataset are in its own units (digits:
  0..16) and standardised as the training data was; other tasks' values are used as given (the units of the
  participants' files).

The result has one entry per image or row: ``{"label": int, "probabilities": {"<label>": float}}``, the
probabilities a softmax over the logits of the task's label set (they sum to 1), ``label`` the most probable.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np

from bcfl_core.dataspec import CSV_DELIMITERS
from training import datasets

MAX_INPUT_BYTES = 1_000_000
MAX_ROWS = 1_000
MAX_IMAGE_PIXELS = 4096 * 4096  # decoded size; a small PNG can decompress to far more than its bytes
IMAGE_DATASET = "digits"
DIGITS_SIDE = 8
DIGITS_MAX = 16.0  # sklearn's digits pixels count ink in 4x4 blocks: 0..16
_PNG, _JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


class PredictInputError(ValueError):
    """The input does not fit the model's data spec; ``message`` says what is wrong in plain words.

    ``code``: ``too_large``, ``empty``, ``not_text``, ``too_many_rows``, ``column_count``, ``column_name``,
    ``not_a_number``, ``image_undecodable``, ``image_too_large``, ``image_not_accepted``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ModelNotReady(Exception):
    """The final model has no ONNX export yet (`training.services.exports.final_model_onnx_export`)."""


@dataclass(frozen=True)
class InputSpec:
    """What the model takes: one example's shape, the label set, and the bundled dataset it was trained on
    (empty for participants' own data)."""

    feature_shape: tuple[int, ...]
    labels: tuple[int, ...]
    dataset: str = ""

    @property
    def n_features(self) -> int:
        return int(np.prod(self.feature_shape))

    @classmethod
    def of_task(cls, task) -> InputSpec:
        dataset = str((task.validation_summary or {}).get("dataset") or "")
        return cls(
            tuple(int(d) for d in task.feature_shape),
            tuple(int(v) for v in task.label_set),
            dataset if dataset in datasets.BUNDLED_DATASETS else "",
        )


def _is_image(data: bytes) -> bool:
    return data.startswith(_PNG) or data.startswith(_JPEG)


def digits_image(data: bytes) -> np.ndarray:
    """A PNG/JPEG as 64 digits pixels in 0..16 (row by row), ink high. Raises PredictInputError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("PNG", "JPEG"):
                raise PredictInputError(
                    "image_undecodable", f"Only PNG and JPEG images are accepted, not {img.format}."
                )
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise PredictInputError(
                    "image_too_large",
                    f"The image is {img.width}×{img.height} pixels; at most {MAX_IMAGE_PIXELS:,} pixels.",
                )
            gray = img.convert("L").resize((DIGITS_SIDE, DIGITS_SIDE), Image.Resampling.BOX)
            pixels = np.asarray(gray, dtype=np.float64)
    except PredictInputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise PredictInputError("image_undecodable", f"The image could not be decoded: {exc}.") from None
    # The corners are background (in sklearn's digits at most a quarter ink): light corners mean dark ink.
    if pixels[[0, 0, -1, -1], [0, -1, 0, -1]].mean() > 127.5:
        pixels = 255.0 - pixels
    return (pixels / 255.0 * DIGITS_MAX).reshape(-1)


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PredictInputError(
            "not_text", f"The input is neither a PNG/JPEG image nor UTF-8 CSV text (byte {exc.start})."
        ) from None


def _delimiter(first_line: str, n: int) -> str:
    for delimiter in CSV_DELIMITERS:
        if len(next(csv.reader([first_line], delimiter=delimiter))) == n:
            return delimiter
    return max(CSV_DELIMITERS, key=lambda d: len(next(csv.reader([first_line], delimiter=d))))


def _number(cell: str) -> float | None:
    try:
        value = float(cell.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _check_header(cells: list[str], spec: InputSpec) -> None:
    if not spec.dataset:
        return  # participants' own data: the platform does not know the names
    names = datasets.feature_names(spec.dataset)
    for col, (got, want) in enumerate(zip(cells, names, strict=True), start=1):
        if got.strip() != want:
            raise PredictInputError(
                "column_name",
                f"Column {col} of the header is named {got.strip()!r}; this model expects {want!r} there "
                f"(the {spec.dataset} feature names, in order).",
            )


def csv_rows(data: bytes | str, spec: InputSpec) -> np.ndarray:
    """CSV text as float64 ``(rows, n_features)``; raises PredictInputError naming the row and column."""
    lines = [(i, line) for i, line in enumerate(_text(data).splitlines(), start=1) if line.strip()]
    if not lines:
        raise PredictInputError("empty", "The input is empty: send an image or CSV rows.")
    n = spec.n_features
    delimiter = _delimiter(lines[0][1], n)
    rows = [(i, next(csv.reader([line], delimiter=delimiter))) for i, line in lines]
    first = rows[0][1]
    if len(first) == n and not any(_number(c) is not None for c in first):
        _check_header(first, spec)
        rows = rows[1:]
    if len(rows) > MAX_ROWS:
        raise PredictInputError(
            "too_many_rows", f"The input has {len(rows):,} rows; at most {MAX_ROWS:,} per request."
        )
    if not rows:
        raise PredictInputError("empty", "The CSV has a header but no rows.")
    values = np.empty((len(rows), n), dtype=np.float64)
    for r, (line, cells) in enumerate(rows, start=1):
        if len(cells) != n:
            raise PredictInputError(
                "column_count",
                f"Row {r} (line {line}) has {len(cells)} columns; this model takes exactly {n} numeric features "
                f"per row (no label column).",
            )
        for c, cell in enumerate(cells, start=1):
            value = _number(cell)
            if value is None:
                shown = "an empty cell" if not cell.strip() else f"{cell.strip()!r}"
                raise PredictInputError(
                    "not_a_number", f"Row {r} (line {line}), column {c}: {shown} is not a finite number."
                )
            values[r - 1, c - 1] = value
    return values


def model_inputs(data: bytes | str, spec: InputSpec) -> np.ndarray:
    """The upload as float32 ``(n, *feature_shape)`` in the model's feature space. Raises PredictInputError."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_INPUT_BYTES:
        raise PredictInputError(
            "too_large", f"The input is {size:,} bytes; at most {MAX_INPUT_BYTES:,} (1 MB)."
        )
    if isinstance(data, bytes) and _is_image(data):
        if spec.dataset != IMAGE_DATASET or spec.n_features != DIGITS_SIDE * DIGITS_SIDE:
            raise PredictInputError(
                "image_not_accepted",
                f"This model was not trained on 8×8 digits images: send CSV rows of its {spec.n_features} features.",
            )
        raw = digits_image(data)[None, :]
    else:
        raw = csv_rows(data, spec)
    x = datasets.scaling(spec.dataset).apply(raw) if spec.dataset else raw.astype(np.float32)
    return x.reshape(len(x), *spec.feature_shape)


@functools.lru_cache(maxsize=8)
def _session(sha256: str, data: bytes):
    from training.onnx_export import session

    return session(data)


def _model_session(final_model):
    from tasks.storage import private_storage

    export = getattr(final_model, "onnx_export", None)
    if export is None:
        raise ModelNotReady(f"The model of task {final_model.task_id} has not been exported to ONNX yet.")
    with private_storage().open(export.file.name, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != export.sha256:
        raise ModelNotReady(f"The ONNX file of task {final_model.task_id}'s model differs from its record.")
    return _session(export.sha256, data)


def predict(final_model, inputs: bytes | str) -> list[dict]:
    """Predict with ``final_model`` (a `training.models.FinalModel` with an `OnnxExport`) on ``inputs``.

    Returns ``[{"label": int, "probabilities": {"<label>": float, ...}}, ...]``, one per image or CSV row, in
    order. Raises PredictInputError (the input does not fit the task's data spec; nothing was run) or
    ModelNotReady (no ONNX export, or its file was altered).
    """
    from training.onnx_export import INPUT_NAME, OUTPUT_NAME

    spec = InputSpec.of_task(final_model.task)
    x = model_inputs(inputs, spec)
    logits = _model_session(final_model).run([OUTPUT_NAME], {INPUT_NAME: x})[0].astype(np.float64)
    allowed = logits[:, list(spec.labels)]
    allowed = np.exp(allowed - allowed.max(axis=1, keepdims=True))
    probs = allowed / allowed.sum(axis=1, keepdims=True)
    return [
        {
            "label": spec.labels[int(np.argmax(p))],
            "probabilities": {str(lbl): float(v) for lbl, v in zip(spec.labels, p, strict=True)},
        }
        for p in probs
    ]
