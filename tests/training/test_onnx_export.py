"""ONNX export of a task's final model: a real digits model exported with torch's exporter, checked with
onnxruntime against torch, stored next to its safetensors; idempotent; a wrong export or an altered file is refused."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch

from tasks.storage import private_storage
from tests.training.trained import digits_final_model
from training import datasets, onnx_export, zoo
from training.models import OnnxExport
from training.services.exports import ExportError, final_model_onnx_export, final_model_torch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


def _stored(name: str) -> bytes:
    with private_storage().open(name, "rb") as f:
        return f.read()


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_export_is_stored_next_to_the_safetensors_and_matches_torch(kind):
    # given
    final = digits_final_model(kind)
    # when
    export = final_model_onnx_export(final_model=final)
    # then
    assert PurePosixPath(export.file.name).parent == PurePosixPath(final.file.name).parent
    assert export.file.name.endswith("model.onnx")
    data = _stored(export.file.name)
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert export.source_sha256 == final.sha256
    assert 0 <= export.max_abs_diff <= onnx_export.TOLERANCE
    assert export.check_examples == 256 and export.opset == onnx_export.OPSET
    # the stored file alone predicts the held-out digits as torch does
    ds = datasets.load_dataset("digits")
    x = ds.x_test.reshape(len(ds.x_test), *final.task.feature_shape).astype(np.float32)
    logits = onnx_export.session(data).run(["logits"], {"features": x})[0]
    with torch.no_grad():
        expected = final_model_torch(final_model=final)(torch.from_numpy(x)).numpy()
    assert np.abs(logits - expected).max() <= onnx_export.TOLERANCE
    assert (logits.argmax(1) == ds.y_test).mean() >= 0.9


def test_export_is_idempotent_and_redone_when_the_stored_file_changed(monkeypatch):
    # given
    final = digits_final_model("mlp")
    first = final_model_onnx_export(final_model=final)
    calls = []
    real = onnx_export.export_checked
    monkeypatch.setattr(onnx_export, "export_checked", lambda *a, **k: calls.append(1) or real(*a, **k))
    # when: again, unchanged
    again = final_model_onnx_export(final_model=final)
    # then
    assert (again.pk, again.sha256, calls) == (first.pk, first.sha256, [])
    assert OnnxExport.objects.count() == 1
    # when: the stored file was altered
    path = private_storage().path(first.file.name)
    with open(path, "ab") as f:
        f.write(b"tampered")
    redone = final_model_onnx_export(final_model=final)
    # then
    assert calls == [1] and redone.pk == first.pk
    assert hashlib.sha256(_stored(redone.file.name)).hexdigest() == redone.sha256


def test_an_export_that_computes_something_else_is_refused_with_the_numbers(monkeypatch):
    # given: the exporter hands back another model's graph
    final = digits_final_model("mlp")
    other = zoo.build_model("mlp", (64,), 10, hidden=32, seed=99)
    real = onnx_export._to_onnx
    monkeypatch.setattr(onnx_export, "_to_onnx", lambda model, example: real(other.eval(), example))
    # when / then
    with pytest.raises(
        onnx_export.OnnxCheckError, match=r"differ from torch's by up to [0-9.e+-]+ on 256 examples"
    ):
        final_model_onnx_export(final_model=final)
    assert not OnnxExport.objects.exists()


def test_altered_safetensors_file_is_refused():
    final = digits_final_model("mlp")
    path = private_storage().path(final.file.name)
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(ExportError, match="sha256 .* differs from its record"):
        final_model_onnx_export(final_model=final)


def test_weights_other_than_the_committed_ones_are_refused():
    # given: a file whose arrays are not the weights hash committed for the final round
    final = digits_final_model("mlp")
    final.weights_sha256 = "ab" * 32
    final.save()
    with pytest.raises(ExportError, match="committed weights hash"):
        final_model_onnx_export(final_model=final)


def test_command_exports_and_prints_the_check():
    from io import StringIO

    from django.core.management import call_command

    final = digits_final_model("mlp")
    out = StringIO()
    call_command("export_onnx", str(final.task_id), stdout=out)
    export = OnnxExport.objects.get(final_model=final)
    assert f"sha256 {export.sha256}" in out.getvalue()
    assert "validation examples" in out.getvalue()
