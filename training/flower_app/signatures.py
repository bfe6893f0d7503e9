"""Signed updates of platform runs: who may answer, and the EIP-712 ``Update`` signature each reply carries.

A reply's ConfigRecord ``bcfl`` holds ``wallet``, ``update-hash`` and ``signature``; the hash must be
``zoo.weights_hash`` of the arrays actually received and the signature must recover to the wallet the
platform registered for the sending node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord

if __package__:  # imported from the repository as training.flower_app.signatures
    from .run_config import rc_get
else:  # loaded by Flower from the unpacked app bundle
    from run_config import rc_get  # type: ignore[no-redef]

from bcfl_core import eip712  # pure Python (eth_account), no Django

REASON_UNKNOWN_NODE = "unknown node"
REASON_MISSING_SIGNATURE = "missing signature"
REASON_HASH_MISMATCH = "update hash mismatch"
REASON_BAD_SIGNATURE = "bad signature"
BCFL_RECORD = "bcfl"


@dataclass(frozen=True)
class SigningContext:
    """What a reply's ``bcfl`` ConfigRecord is checked against: the task on chain and its participants."""

    participants: Mapping[int, str]  # node id -> checksummed wallet
    chain_id: int
    registry_address: str
    chain_task_id: int
    # node id -> examples the participant committed when joining (its data summary's n): a reply may not
    # claim more (FedAvg weights by the claim). Nodes without an entry are not capped.
    max_examples: Mapping[int, int] = field(default_factory=dict)
    # JSON file [node_id, ...] the platform rewrites when a participant is banned mid-training ("" = none)
    banned_path: str = ""

    def banned(self) -> set[int]:
        """Node ids banned now (re-read on every call: the platform rewrites the file on a ban)."""
        if not self.banned_path:
            return set()
        try:
            return {int(n) for n in json.loads(Path(self.banned_path).read_text())}
        except FileNotFoundError:
            return set()


def parse_participants(text: str) -> dict[int, str]:
    """``{"node_id": "0xWallet"}`` JSON or ``node_id:0xWallet,...`` → {node id: checksummed wallet}.

    Raises ``ValueError`` for a malformed node id or wallet address.
    """
    from eth_utils import to_checksum_address

    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        pairs = json.loads(text).items()
    else:
        pairs = (item.split(":", 1) for item in text.split(",") if item.strip())
    return {int(node): to_checksum_address(str(wallet).strip()) for node, wallet in pairs}


def signing_context_from_config(run_config: Mapping[str, Any]) -> SigningContext | None:
    """The signing context of a platform run, or None (plain runs: tests, simulations, benchmarks)."""
    path = rc_get(run_config, "participants-path")
    text = Path(path).read_text() if path else rc_get(run_config, "participants")
    participants = parse_participants(text)
    if not participants:
        return None
    caps_path = rc_get(run_config, "example-caps-path")
    caps = json.loads(Path(caps_path).read_text()) if caps_path else {}
    return SigningContext(
        participants=participants,
        chain_id=rc_get(run_config, "chain-id"),
        registry_address=rc_get(run_config, "registry-address"),
        chain_task_id=rc_get(run_config, "chain-task-id"),
        max_examples={int(node): int(n) for node, n in caps.items()},
        banned_path=str(rc_get(run_config, "banned-path") or ""),
    )


def check_update_signature(
    bcfl: ConfigRecord | Mapping[str, Any] | None,
    update_sha256: str,
    node_id: int,
    server_round: int,
    ctx: SigningContext,
) -> tuple[str, str, str]:
    """Check one reply's ``bcfl`` record against the arrays' own hash and the node's registered wallet.

    Returns ``(wallet, signature, reason)``; ``reason`` is "" when the update is properly signed,
    else starts with one of "unknown node", "missing signature", "update hash mismatch", "bad signature".
    ``update_sha256``: ``zoo.weights_hash`` of the arrays as received (hex, no 0x).
    """
    wallet = ctx.participants.get(int(node_id))
    if wallet is None:
        return "", "", REASON_UNKNOWN_NODE
    if bcfl is None or not all(k in bcfl for k in ("wallet", "update-hash", "signature")):
        return wallet, "", REASON_MISSING_SIGNATURE
    signature = str(bcfl["signature"])
    claimed = str(bcfl["update-hash"]).lower().removeprefix("0x")
    if claimed != update_sha256.lower():
        return (
            wallet,
            signature,
            f"{REASON_HASH_MISMATCH}: signed {claimed[:16]}…, received {update_sha256[:16]}…",
        )
    try:
        message = eip712.update_typed_data(
            chain_id=ctx.chain_id,
            verifying_contract=ctx.registry_address,
            task_id=ctx.chain_task_id,
            round=server_round,
            update_hash="0x" + update_sha256,
        )
        signer = eip712.recover_signer(message, signature)
    except (eip712.SignatureError, ValueError) as exc:
        return wallet, signature, f"{REASON_BAD_SIGNATURE}: {exc}"
    if signer != wallet:
        return (
            wallet,
            signature,
            f"{REASON_BAD_SIGNATURE}: signed by {signer}, node is registered to {wallet}",
        )
    if str(bcfl["wallet"]).lower() != wallet.lower():
        return (
            wallet,
            signature,
            f"{REASON_BAD_SIGNATURE}: claims wallet {bcfl['wallet']}, node is {wallet}'s",
        )
    return wallet, signature, ""
