"""bcfl_core.merkle: stake leaves (StandardMerkleTree encoding) and all proofs at once (against the contract:
tests/contracts/solidity/test_stake_token.py::test_stake_leaf_matches_python)."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from bcfl_core.merkle import merkle_proof, merkle_proofs, merkle_root, stake_leaf_hash, verify

HOLDER = "0x" + "ab" * 20


def test_stake_leaf_is_double_keccak_of_abi_encoded_address_and_shares():
    encoded = bytes(12) + bytes.fromhex("ab" * 20) + (2500).to_bytes(32, "big")
    assert stake_leaf_hash(HOLDER, 2500) == keccak(keccak(encoded))
    assert stake_leaf_hash(HOLDER, 2500) != stake_leaf_hash(HOLDER, 2501)
    with pytest.raises(ValueError, match="bad address"):
        stake_leaf_hash("0x1234", 1)
    with pytest.raises(ValueError, match="uint256"):
        stake_leaf_hash(HOLDER, -1)


@given(n=st.integers(1, 70))
def test_all_proofs_equal_single_proofs_and_verify(n):
    leaves = [stake_leaf_hash(f"0x{i + 1:040x}", i) for i in range(n)]
    root = merkle_root(leaves)
    proofs = merkle_proofs(leaves)
    assert proofs == [merkle_proof(leaves, i) for i in range(n)]
    assert all(verify(p, root, leaf) for p, leaf in zip(proofs, leaves, strict=True))
    assert merkle_proofs([]) == []
