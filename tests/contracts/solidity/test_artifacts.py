"""The committed artifacts match a fresh compile (CI drift check) and the merkle helper matches MerkleProof."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from eth_utils import keccak

from bcfl_core.merkle import ZERO_ROOT, leaf_hash, merkle_proof, merkle_root, verify
from contracts.artifacts import ROOT_CONTRACTS, artifact_names, load_artifact

EXPECTED = {
    "ERC1271Wallet",
    "GasBurner",
    "IdentityRegistry",
    "Marketplace",
    "MarketplaceWithdrawAttacker",
    "ModelNFT",
    "RevertingReceiver",
    "StakeClaimAttacker",
    "StakeLens",
    "StakeToken",
    "TaskRegistry",
}


def test_artifacts_shape():
    assert set(artifact_names()) == EXPECTED
    for name in EXPECTED:
        art = load_artifact(name)
        assert set(art) == {"abi", "bytecode", "compiler", "contractName", "deployedBytecode", "sourceName"}
        assert art["contractName"] == name and art["sourceName"].startswith("contracts/solidity/")
        assert art["compiler"]["settings"]["evmVersion"] == "cancun"
        assert art["compiler"]["version"].startswith("0.8.37")
        assert art["bytecode"].startswith("0x6")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is required to compile")
def test_compiled_artifacts_are_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(ROOT_CONTRACTS / "compile.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 17])
def test_merkle_proofs(n):
    leaves = [leaf_hash(f"0x{i + 1:040x}", keccak(text=str(i)), i, bool(i % 2)) for i in range(n)]
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        assert verify(merkle_proof(leaves, i), root, leaf)
    assert not verify(merkle_proof(leaves, 0), root, keccak(text="nope"))
    assert merkle_root([]) == ZERO_ROOT
