"""Stakes of a trained model as a Merkle tree of (holder, shares): what `TaskRegistry.finalize` (or `fail`)
commits in one root, whatever the number of holders, and what each holder's `StakeToken.claimShares` proves.

Django-free. Holders are checksummed addresses with shares > 0 (participants judged malicious have 0 and no
leaf); the same address under two spellings (e.g. the creator also a participant) is one holder with the
sum. Leaves are sorted by address so anyone holding the shares recomputes the same root (the OpenZeppelin
StandardMerkleTree leaf encoding; `bcfl_core.merkle` for the tree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils import to_checksum_address

from bcfl_core import merkle

TOTAL_SHARES = 10_000  # StakeToken.TOTAL_SHARES: a model's stake in basis points


@dataclass(frozen=True)
class StakeLeaf:
    """One holder's leaf: its position, shares (out of 10,000), leaf hash and proof (0x hex)."""

    index: int
    holder: str
    shares: int
    leaf: str
    proof: tuple[str, ...]


@dataclass(frozen=True)
class StakesTree:
    root: str  # 0x + 64 hex; 32 zero bytes when nobody holds anything
    leaves: tuple[StakeLeaf, ...]


def holders(shares_bps: Mapping[str, int]) -> dict[str, int]:
    """{checksummed holder: shares > 0}, merging spellings of one address. Raises ValueError when the shares
    do not sum to `TOTAL_SHARES` (the contract cannot check a root's sum: the platform must)."""
    merged: dict[str, int] = {}
    for who, n in shares_bps.items():
        if int(n) < 0:
            raise ValueError(f"negative shares for {who}")
        if int(n):
            addr = to_checksum_address(who)
            merged[addr] = merged.get(addr, 0) + int(n)
    if merged and sum(merged.values()) != TOTAL_SHARES:
        raise ValueError(f"shares sum to {sum(merged.values())}, not {TOTAL_SHARES}")
    return dict(sorted(merged.items(), key=lambda kv: kv[0].lower()))


def stakes_tree(shares_bps: Mapping[str, int]) -> StakesTree:
    """The tree over `holders(shares_bps)`: root and, per holder, its leaf and proof."""
    items = list(holders(shares_bps).items())
    leaves = [merkle.stake_leaf_hash(h, n) for h, n in items]
    root = merkle.merkle_root(leaves)
    out = tuple(
        StakeLeaf(
            index=i,
            holder=h,
            shares=n,
            leaf="0x" + leaves[i].hex(),
            proof=tuple("0x" + p.hex() for p in merkle.merkle_proof(leaves, i)),
        )
        for i, (h, n) in enumerate(items)
    )
    return StakesTree(root="0x" + root.hex(), leaves=out)
