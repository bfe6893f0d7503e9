"""Model files of the ServerApp: safetensors checkpoints with a sha256 beside them. Nothing is unpickled."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training import zoo


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks). Raises ``OSError`` when unreadable."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_safetensors(
    path: str | Path,
    keys: Sequence[str],
    arrays: Sequence[np.ndarray],
    metadata: dict[str, str] | None = None,
) -> str:
    """Write arrays as safetensors and ``<path>.sha256``; returns the file's sha256.

    Written to ``<path>.tmp`` first and renamed, so a reader never sees half a file.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(zoo.arrays_to_dict(keys, arrays), str(tmp), metadata=metadata or {})
    tmp.replace(path)
    digest = sha256_file(path)
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return digest


def load_checkpoint(path: str | Path, keys: Sequence[str], expected_sha256: str = "") -> list[np.ndarray]:
    """Arrays of a round checkpoint in ``keys`` order; checks their ``weights_hash`` when given.

    Raises ``ValueError`` when the file holds other arrays than ``keys`` or has another weights hash.
    """
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if set(tensors) != set(keys):
        raise ValueError(f"checkpoint {path} does not hold this model's arrays")
    arrays = [tensors[k] for k in keys]
    if expected_sha256 and zoo.weights_hash(arrays) != expected_sha256.lower().removeprefix("0x"):
        raise ValueError(f"checkpoint {path} does not have the committed weights hash {expected_sha256}")
    return arrays
