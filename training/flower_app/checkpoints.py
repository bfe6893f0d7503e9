"""Model files of the ServerApp: safetensors checkpoints with a sha256 beside them. Nothing is unpickled.

Reading a checkpoint back and hashing a file are the audit trail's (``training.trail``), shared with
``verify_task`` and finalization.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training import zoo
from training.trail import load_checkpoint, sha256_file  # noqa: F401 - this module's public names too


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
