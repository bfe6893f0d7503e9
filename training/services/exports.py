"""ONNX export of a task's final model (`OnnxExport`), stored in private storage next to its safetensors.

The model is rebuilt as it was trained (model kind, feature shape, classes and hyper-parameters from the run
config of the final model's round, `training.flower_app.task.model_spec`), its weights loaded from the final
model's safetensors (file sha256 and committed weights hash both checked), exported and checked by
`training.onnx_export` on up to `CHECK_EXAMPLES` rows of the task's validation set.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone

from bcfl_core import dataspec
from tasks.models import Task
from tasks.storage import private_storage
from training.models import FinalModel, OnnxExport, onnx_upload_to

CHECK_EXAMPLES = 256


class ExportError(Exception):
    """The final model cannot be exported (missing or altered file, data that does not fit); says why."""


def _read(storage, name: str) -> bytes:
    with storage.open(name, "rb") as f:
        return f.read()


def final_model_run_config(*, final_model: FinalModel) -> dict[str, Any]:
    """The run config the final model was trained with; the task's fields fill in what a config lacks."""
    task: Task = final_model.task
    base = {
        "model": task.model_kind,
        "feature-shape": "x".join(str(int(d)) for d in task.feature_shape),
        "num-classes": int(max(task.label_set)) + 1,
    }
    run = final_model.source_round.run
    return {**base, **(run.run_config or {})}


def final_model_torch(*, final_model: FinalModel):
    """The final model as a torch module (eval mode) with its stored weights.

    Raises ExportError when the safetensors file is missing, its sha256 differs from the record, or its
    arrays do not match the model or the committed weights hash.
    """
    from training import zoo
    from training.flower_app import task as app_task
    from training.trail import load_checkpoint

    storage = private_storage()
    name = final_model.file.name
    if not name or not storage.exists(name):
        raise ExportError(f"the final model file of task {final_model.task_id} is missing")
    digest = hashlib.sha256(_read(storage, name)).hexdigest()
    if digest != final_model.sha256:
        raise ExportError(
            f"the final model file's sha256 {digest} differs from its record {final_model.sha256}"
        )
    model = app_task.model_spec(final_model_run_config(final_model=final_model)).build()
    try:
        arrays = load_checkpoint(storage.path(name), zoo.state_keys(model), final_model.weights_sha256)
        zoo.set_arrays(model, arrays)
    except ValueError as exc:
        raise ExportError(f"the final model's weights do not fit its model: {exc}") from None
    return model.eval()


def check_batch(*, task: Task, limit: int = CHECK_EXAMPLES) -> np.ndarray:
    """Up to ``limit`` rows of the task's validation set, float32 ``(n, *feature_shape)``."""
    try:
        x, _y = dataspec.load_data_file(task.validation_file.path)
    except (dataspec.DataFileError, ValueError, OSError) as exc:
        raise ExportError(f"the task's validation set cannot be read: {exc}") from None
    want = tuple(int(d) for d in task.feature_shape)
    if tuple(x.shape[1:]) != want and int(np.prod(x.shape[1:])) == int(np.prod(want)):
        x = x.reshape(len(x), *want)
    if tuple(x.shape[1:]) != want:
        raise ExportError(f"the validation set's examples have shape {x.shape[1:]}, not the task's {want}")
    return np.ascontiguousarray(x[:limit], dtype=np.float32)


def _current(export: OnnxExport | None, final_model: FinalModel) -> bool:
    if export is None or export.source_sha256 != final_model.sha256:
        return False
    storage = private_storage()
    if not export.file.name or not storage.exists(export.file.name):
        return False
    return hashlib.sha256(_read(storage, export.file.name)).hexdigest() == export.sha256


def final_model_onnx_export(*, final_model: FinalModel) -> OnnxExport:
    """Export ``final_model`` to ONNX, check it against torch, store it; return its `OnnxExport`.

    Idempotent: an export of the same safetensors file whose stored bytes still match their sha256 is returned
    as it is; otherwise the .onnx file (``final_models/task-<id>/model.onnx``) is written anew. Raises
    ExportError (see `final_model_torch`, `check_batch`) or `training.onnx_export.OnnxCheckError` when
    onnxruntime and torch differ by more than `training.onnx_export.TOLERANCE` (nothing is stored then).
    """
    from training import onnx_export

    existing = OnnxExport.objects.filter(final_model=final_model).first()
    if _current(existing, final_model):
        return existing
    model = final_model_torch(final_model=final_model)
    exported = onnx_export.export_checked(model, check_batch(task=final_model.task))
    storage = private_storage()
    name = onnx_upload_to(OnnxExport(final_model=final_model), "model.onnx")
    if storage.exists(name):  # an earlier export, or one whose row was never written
        storage.delete(name)
    saved = storage.save(name, ContentFile(exported.data))
    export, _created = OnnxExport.objects.update_or_create(
        final_model=final_model,
        defaults={
            "file": saved,
            "sha256": hashlib.sha256(exported.data).hexdigest(),
            "source_sha256": final_model.sha256,
            "opset": exported.opset,
            "max_abs_diff": exported.max_abs_diff,
            "check_examples": exported.examples,
            "export_seconds": exported.seconds,
            "created_at": timezone.now(),
        },
    )
    return export
