"""Merkle trees for round commitments (`TaskRegistry.commitRound(..., updatesRoot, ...)`) and stakes
(`TaskRegistry.finalize(..., stakesRoot)` / `fail`, claimed with `StakeToken.claimShares`). No web3 import.

Leaves follow OpenZeppelin's StandardMerkleTree encoding, matching `TaskRegistry.updateLeaf` and
`StakeToken.stakeLeaf`:
    leaf = keccak256(keccak256(abi.encode(address participant, bytes32 updateHash, uint256 score, bool accepted)))
    stake leaf = keccak256(keccak256(abi.encode(address holder, uint256 shares)))
Internal nodes hash the sorted pair (OZ `Hashes.commutativeKeccak256`), so proofs verify with
`MerkleProof.verify` / `TaskRegistry.verifyUpdate`. An odd node at the end of a level is promoted unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_hash.auto import keccak

ZERO_ROOT = b"\x00" * 32


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _b32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def leaf_hash(participant: str, update_hash: bytes | str, score: int, accepted: bool) -> bytes:
    """Leaf of one update (see module docstring). `score` is a uint256 (e.g. a metric scaled by 1e6)."""
    address = _address(participant)
    if not 0 <= score < 2**256:
        raise ValueError("score must fit in uint256")
    encoded = b"\x00" * 12 + address + _b32(update_hash) + _word(score) + _word(int(bool(accepted)))
    return keccak(keccak(encoded))


def stake_leaf_hash(holder: str, shares: int) -> bytes:
    """Leaf of one holder's stake (see module docstring); `shares` out of StakeToken.TOTAL_SHARES (10,000)."""
    if not 0 <= shares < 2**256:
        raise ValueError("shares must fit in uint256")
    return keccak(keccak(b"\x00" * 12 + _address(holder) + _word(shares)))


def _address(value: str) -> bytes:
    address = bytes.fromhex(value.removeprefix("0x"))
    if len(address) != 20:
        raise ValueError(f"bad address {value!r}")
    return address


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    level = [_b32(leaf) for leaf in leaves]
    levels = [level]
    while len(level) > 1:
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        levels.append(level)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over `leaves` in the given order; the single leaf for one leaf, 32 zero bytes for none."""
    if not leaves:
        return ZERO_ROOT
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf `index` up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    proof = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def merkle_proofs(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every leaf's proof (as `merkle_proof`), building the tree once: O(n log n) for n leaves."""
    levels = _levels(leaves) if leaves else []
    proofs = []
    for index in range(len(leaves)):
        proof, i = [], index
        for level in levels[:-1]:
            if (i ^ 1) < len(level):
                proof.append(level[i ^ 1])
            i //= 2
        proofs.append(proof)
    return proofs


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    node = _b32(leaf)
    for sibling in proof:
        node = hash_pair(node, _b32(sibling))
    return node == _b32(root)
