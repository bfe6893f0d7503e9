"""Model zoo: the torch models a task can train, and their weights as numpy arrays.

Importable without Django. Weights move between processes only as lists of numpy
arrays in a fixed key order (the model's ``state_dict`` order), never pickled.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from training.model_kinds import MODEL_KINDS as _KINDS  # noqa: E402

MODEL_KINDS = tuple(k.name for k in _KINDS)


class MLP(nn.Module):
    """in_features → hidden → classes, ReLU, optional dropout."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 64, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Two conv blocks for single-channel square images (8x8 digits, 28x28 MNIST-like)."""

    def __init__(self, side: int, num_classes: int, channels: int = 16, hidden: int = 64):
        super().__init__()
        # 8x8 images are too small for two poolings; pool once below 16 pixels.
        pools = 1 if side < 16 else 2
        layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        if pools == 2:
            layers += [nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        else:
            layers += [nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        out_side = side // (2**pools)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * 2 * out_side * out_side, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Accept flat features (N, side*side) as well as (N, 1, side, side) images.
        x = x.reshape(x.shape[0], 1, self.side, self.side)
        return self.head(self.features(x))


def _image_side(input_shape: Sequence[int]) -> int:
    n = int(np.prod(input_shape))
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f"cnn needs square single-channel images; got input shape {tuple(input_shape)}")
    return side


def build_model(kind: str, input_shape: Sequence[int], num_classes: int, **hparams) -> nn.Module:
    """Build a model by kind.

    ``input_shape`` is one example's feature shape, e.g. ``(64,)`` or ``(1, 28, 28)``.
    ``hparams``: mlp → ``hidden``, ``dropout``; cnn → ``channels``, ``hidden``. A ``seed``
    makes the initial weights reproducible.
    """
    seed = hparams.pop("seed", None)
    if seed is not None:
        torch.manual_seed(int(seed))
    input_shape = tuple(int(d) for d in input_shape)
    if kind == "mlp":
        return MLP(
            int(np.prod(input_shape)),
            num_classes,
            hidden=int(hparams.get("hidden", 64)),
            dropout=float(hparams.get("dropout", 0.0)),
        )
    if kind == "cnn":
        return SmallCNN(
            _image_side(input_shape),
            num_classes,
            channels=int(hparams.get("channels", 16)),
            hidden=int(hparams.get("hidden", 64)),
        )
    raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def state_keys(model: nn.Module) -> list[str]:
    """The fixed key order used for every array list."""
    return list(model.state_dict().keys())


def get_arrays(model: nn.Module) -> list[np.ndarray]:
    """State dict → list of numpy arrays in ``state_keys`` order (copies)."""
    return [t.detach().cpu().numpy().copy() for t in model.state_dict().values()]


def set_arrays(model: nn.Module, arrays: Sequence[np.ndarray]) -> None:
    """List of numpy arrays (``state_keys`` order) → model, strictly (count, shapes)."""
    keys = state_keys(model)
    if len(keys) != len(arrays):
        raise ValueError(f"expected {len(keys)} arrays, got {len(arrays)}")
    current = model.state_dict()
    new = OrderedDict()
    for key, arr in zip(keys, arrays, strict=True):
        arr = np.asarray(arr)
        if tuple(arr.shape) != tuple(current[key].shape):
            raise ValueError(f"{key}: expected shape {tuple(current[key].shape)}, got {arr.shape}")
        new[key] = torch.from_numpy(np.ascontiguousarray(arr)).to(current[key].dtype)
    model.load_state_dict(new, strict=True)


def arrays_to_dict(keys: Sequence[str], arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(a) for k, a in zip(keys, arrays, strict=True)}


def weights_hash(arrays: Sequence[np.ndarray]) -> str:
    """sha256 over the canonical bytes of each array: dtype, shape, then little-endian C-order data."""
    h = hashlib.sha256()
    h.update(f"n={len(arrays)};".encode())
    for arr in arrays:
        arr = np.asarray(arr)
        le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        h.update(f"{le.dtype.str}|{','.join(str(d) for d in arr.shape)};".encode())
        h.update(np.ascontiguousarray(le).tobytes(order="C"))
    return h.hexdigest()


def count_parameters(arrays: Sequence[np.ndarray]) -> int:
    return int(sum(np.asarray(a).size for a in arrays))
