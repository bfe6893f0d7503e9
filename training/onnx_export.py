"""ONNX export of a trained zoo model, checked against torch with onnxruntime. Django-free.

Export uses torch's own exporter (``torch.onnx.export(..., dynamo=True)``, which needs the ``onnx`` and
``onnxscript`` packages) with one input ``features`` of shape ``(batch, *feature_shape)`` float32, the batch
dimension dynamic, and one output ``logits`` of shape ``(batch, num_classes)``. The check runs the ONNX model
with onnxruntime (CPU) on a batch of real examples and on a single example, and compares the logits with
torch's: the largest absolute difference must be at most `TOLERANCE`, else `OnnxCheckError` names the numbers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

INPUT_NAME = "features"
OUTPUT_NAME = "logits"
OPSET = 18
TOLERANCE = 1e-4  # max |onnxruntime - torch| over the check batch's logits
MAX_BATCH = 1_000_000


class OnnxCheckError(ValueError):
    """The exported model does not compute what the torch model computes (the message has the numbers)."""


@dataclass(frozen=True)
class Exported:
    """An ONNX model (serialized ModelProto bytes) and its check: max |ORT - torch| over ``examples`` rows."""

    data: bytes
    opset: int
    max_abs_diff: float
    examples: int
    seconds: float


def session(data: bytes):
    """An onnxruntime CPU session for ONNX bytes, one intra-op thread (the machine's cores are shared)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def _to_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    # The exporter prints its progress to stdout, logs that torchvision's operators are not registered, and
    # raises a FutureWarning of its own internals: none of it is about this model.
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                model,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                opset_version=OPSET,
                dynamo=True,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    return program.model_proto.SerializeToString()


def max_abs_diff(data: bytes, model: nn.Module, x: np.ndarray) -> float:
    """Largest |onnxruntime - torch| over the logits of ``x`` (float32, ``(n, *feature_shape)``)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = session(data).run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    if got.shape != expected.shape:
        raise OnnxCheckError(f"ONNX output shape {got.shape} differs from torch's {expected.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))


def export_checked(model: nn.Module, check_batch: np.ndarray, *, tolerance: float = TOLERANCE) -> Exported:
    """Export ``model`` (eval mode) to ONNX and check it on ``check_batch`` and on its first row alone.

    ``check_batch``: real examples, float32 ``(n, *feature_shape)`` with n >= 1. Raises `OnnxCheckError` when
    onnxruntime and torch differ by more than ``tolerance`` (naming the difference, the tolerance and n).
    """
    x = np.ascontiguousarray(check_batch, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"the check batch needs at least one example, got shape {x.shape}")
    started = time.perf_counter()
    model = model.eval()
    # Two rows so the exporter cannot specialise the batch dimension to 1.
    data = _to_onnx(model, torch.from_numpy(np.concatenate([x[:1], x[:1]])))
    diff = max(max_abs_diff(data, model, x), max_abs_diff(data, model, x[:1]))
    if not diff <= tolerance:  # also catches NaN
        raise OnnxCheckError(
            f"the ONNX model's logits differ from torch's by up to {diff:.3g} on {len(x)} examples "
            f"(tolerance {tolerance:g}); it was not stored"
        )
    return Exported(data, OPSET, diff, int(len(x)), time.perf_counter() - started)
