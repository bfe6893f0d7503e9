"""The audit trail's pure pieces, shared by the platform (round ingestion, finalization) and `verify_task`.

Django-free and Flower-free: Merkle leaves of update records (any object with `wallet`, `update_sha256`,
`score_uint`, `accepted` and `node_id`, e.g. a `training.models.Update`), a round's root, and checkpoint
files (sha256 of the file, arrays in a model's key order checked against the committed weights hash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bcfl_core import merkle

SCORE_SCALE = 10**6  # leaf score = round(score * 1e6) as uint256
ZERO_HASH = "0x" + "00" * 32


class LeafRecord(Protocol):
    wallet: str
    update_sha256: str
    score_uint: Any
    accepted: bool
    node_id: Any


def score_uint(score: float) -> int:
    """A score as the leaf's uint256: round(score * 1e6), never negative."""
    return max(0, int(round(float(score) * SCORE_SCALE)))


def update_leaf(update: LeafRecord) -> bytes | None:
    """Leaf of an update (participant, update hash, score, accepted); None for an unknown node (no wallet)."""
    if not update.wallet:
        return None
    update_hash = "0x" + update.update_sha256 if update.update_sha256 else ZERO_HASH
    return merkle.leaf_hash(update.wallet, update_hash, int(update.score_uint), bool(update.accepted))


def round_leaves(updates: Iterable[LeafRecord]) -> list[tuple[Any, bytes]]:
    """The round's (update, leaf) pairs in tree order: by node id (deterministic, recomputable from rows)."""
    pairs = [(u, update_leaf(u)) for u in sorted(updates, key=lambda u: int(u.node_id))]
    return [(u, leaf) for u, leaf in pairs if leaf is not None]


def round_root(updates: Iterable[LeafRecord]) -> str:
    """0x-prefixed Merkle root of the round's leaves (`bcfl_core.merkle`)."""
    return "0x" + merkle.merkle_root([leaf for _, leaf in round_leaves(updates)]).hex()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_keys(path: str | Path) -> list[str]:
    """The array names stored in a safetensors file (safetensors sorts them)."""
    from safetensors import safe_open

    with safe_open(str(path), "numpy") as f:
        return list(f.keys())


def load_checkpoint(path: str | Path, keys: Sequence[str], expected_sha256: str = "") -> list:
    """Arrays (numpy) of a safetensors checkpoint in `keys` order.

    Raises ValueError when the file does not hold exactly `keys`, or when `expected_sha256` is given and the
    arrays' `zoo.weights_hash` differs from it.
    """
    from safetensors.numpy import load_file

    from training import zoo

    tensors = load_file(str(path))
    if set(tensors) != set(keys):
        raise ValueError(f"checkpoint {path} does not hold this model's arrays")
    arrays = [tensors[k] for k in keys]
    if expected_sha256 and zoo.weights_hash(arrays) != expected_sha256.lower().removeprefix("0x"):
        raise ValueError(f"checkpoint {path} does not have the committed weights hash {expected_sha256}")
    return arrays
