"""The model kinds a task can train (metadata only; the torch models are in :mod:`training.zoo`).

Torch-free and Django-free so the web process can list them without importing torch. Adding a kind: one
entry here and its builder in ``training.zoo.build_model``.
"""

from __future__ import annotations

from tasks.catalog import Entry

MODEL_KINDS: tuple[Entry, ...] = (
    Entry("mlp", "MLP", "One hidden layer (64 units, ReLU) over the flattened features.", default=True),
    Entry("cnn", "Small CNN", "Two 3x3 convolution blocks for single-channel square images (e.g. 8x8)."),
)
