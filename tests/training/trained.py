"""A small real model trained on the bundled digits data, saved as a task's `FinalModel` (for the export and
prediction tests). Training takes about a second; the arrays are kept per process."""

from __future__ import annotations

import functools
import hashlib
import io

import numpy as np
from django.core.files.base import ContentFile

from bcfl_core import dataspec
from tests.tasks.factories import TaskFactory
from tests.training.factories import FinalModelFactory, RoundFactory, RunFactory
from training import datasets, zoo
from training.flower_app import task as app_task

SHAPES = {"mlp": (64,), "cnn": (1, 8, 8)}


@functools.cache
def trained_arrays(kind: str, hidden: int = 32, epochs: int = 15) -> tuple[list[str], list[np.ndarray]]:
    """(state keys, arrays) of a `kind` model trained on digits' training split (standardised features)."""
    ds = datasets.load_dataset("digits")
    shape = SHAPES[kind]
    model = zoo.build_model(kind, shape, 10, hidden=hidden, seed=7)
    x = ds.x_train.reshape(len(ds.x_train), *shape)
    app_task.train(model, x, ds.y_train, epochs=epochs, batch_size=32, lr=0.05, seed=7)
    return zoo.state_keys(model), zoo.get_arrays(model)


def run_config(kind: str, hidden: int = 32) -> dict:
    shape = "x".join(str(d) for d in SHAPES[kind])
    return {"model": kind, "feature-shape": shape, "num-classes": 10, "hidden": hidden, "dataset": "digits"}


def safetensors_bytes(keys: list[str], arrays: list[np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save(zoo.arrays_to_dict(keys, arrays))


def digits_final_model(kind: str = "mlp", *, arrays: list[np.ndarray] | None = None, hidden: int = 32):
    """A completed digits task whose `FinalModel` holds the trained `kind` model (or the given arrays)."""
    keys, trained = trained_arrays(kind, hidden)
    arrays = trained if arrays is None else arrays
    ds = datasets.load_dataset("digits")
    x_val = ds.x_test.reshape(len(ds.x_test), *SHAPES[kind])
    buf = io.BytesIO()
    np.savez(buf, x=x_val, y=ds.y_test)
    task = TaskFactory(
        model_kind=kind,
        feature_shape=list(SHAPES[kind]),
        label_set=list(range(10)),
        validation_file=ContentFile(buf.getvalue(), name="digits-validation.npz"),
        validation_summary={**dataspec.data_summary(x_val, ds.y_test), "dataset": "digits"},
    )
    run = RunFactory(task=task, run_config=run_config(kind, hidden))
    rnd = RoundFactory(run=run, task=task, number=1, global_sha256=zoo.weights_hash(arrays))
    data = safetensors_bytes(keys, arrays)
    return FinalModelFactory(
        source_round=rnd,
        task=task,
        file=ContentFile(data, name="model.safetensors"),
        sha256=hashlib.sha256(data).hexdigest(),
        weights_sha256=zoo.weights_hash(arrays),
    )
