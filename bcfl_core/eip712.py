"""EIP-712 typed data for joining a task and for uniqueness credentials.

Pure Python (eth_account / eth_utils only, no Django, no web3) so the participant CLI can import it.

Join (signed by the participant's wallet, verified by the platform):

    domain  = {name: "BCFL", version: "1", chainId, verifyingContract: <TaskRegistry address>}
    Join(uint256 taskId, address participant, bytes32 nodePublicKeyHash, bytes32 dataSummaryHash)

    taskId            the ON-CHAIN task id (TaskRegistry's, not the platform's row id)
    nodePublicKeyHash keccak256(utf-8 of the node public key, surrounding whitespace stripped)
    dataSummaryHash   keccak256(canonical JSON of the data summary: sorted keys, no spaces, UTF-8)

Update (signed by the participant's wallet for every model update it returns in a round):

    domain  = {name: "BCFL", version: "1", chainId, verifyingContract: <TaskRegistry address>}
    Update(uint256 taskId, uint32 round, bytes32 updateHash)

    updateHash        sha256 of the update's arrays (training.zoo.weights_hash), as 32 bytes

UniquenessCredential (signed by a trusted issuer, presented by the wallet's owner):

    domain  = {name: "BCFL", version: "1", chainId}
    UniquenessCredential(address subject, bytes32 nullifier, uint64 expiresAt)
"""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "BCFL"
DOMAIN_VERSION = "1"

EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
EIP712_DOMAIN_NO_CONTRACT = EIP712_DOMAIN[:3]

JOIN_TYPE = [
    {"name": "taskId", "type": "uint256"},
    {"name": "participant", "type": "address"},
    {"name": "nodePublicKeyHash", "type": "bytes32"},
    {"name": "dataSummaryHash", "type": "bytes32"},
]
UPDATE_TYPE = [
    {"name": "taskId", "type": "uint256"},
    {"name": "round", "type": "uint32"},
    {"name": "updateHash", "type": "bytes32"},
]
CREDENTIAL_TYPE = [
    {"name": "subject", "type": "address"},
    {"name": "nullifier", "type": "bytes32"},
    {"name": "expiresAt", "type": "uint64"},
]


class SignatureError(ValueError):
    """The signature is malformed or could not be recovered."""


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the byte string every hash in BCFL is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def keccak_hex(data: bytes | str) -> str:
    """0x-prefixed lowercase keccak256 of bytes (or of the UTF-8 of a str)."""
    if isinstance(data, str):
        data = data.encode()
    return "0x" + keccak(data).hex()


def node_public_key_hash(node_public_key: str) -> str:
    return keccak_hex(node_public_key.strip())


def data_summary_hash(summary: dict) -> str:
    return keccak_hex(canonical_json(summary))


def join_domain(*, chain_id: int, verifying_contract: str) -> dict:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def join_typed_data(
    *,
    chain_id: int,
    verifying_contract: str,
    task_id: int,
    participant: str,
    node_public_key: str,
    data_summary: dict,
) -> dict:
    """The full EIP-712 message (the `eth_signTypedData_v4` JSON) a participant signs to join a task."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, "Join": JOIN_TYPE},
        "primaryType": "Join",
        "domain": join_domain(chain_id=chain_id, verifying_contract=verifying_contract),
        "message": {
            "taskId": int(task_id),
            "participant": to_checksum_address(participant),
            "nodePublicKeyHash": node_public_key_hash(node_public_key),
            "dataSummaryHash": data_summary_hash(data_summary),
        },
    }


def update_typed_data(
    *, chain_id: int, verifying_contract: str, task_id: int, round: int, update_hash: str
) -> dict:
    """The full EIP-712 message a participant signs over one round's update (`update_hash`: 0x + 64 hex)."""
    update_hash = update_hash.lower()
    if not update_hash.startswith("0x"):
        update_hash = "0x" + update_hash
    if len(update_hash) != 66:
        raise ValueError("update_hash must be 32 bytes as hex")
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, "Update": UPDATE_TYPE},
        "primaryType": "Update",
        "domain": join_domain(chain_id=chain_id, verifying_contract=verifying_contract),
        "message": {"taskId": int(task_id), "round": int(round), "updateHash": update_hash},
    }


def credential_typed_data(*, chain_id: int, subject: str, nullifier: str, expires_at: int) -> dict:
    """The full EIP-712 message a trusted issuer signs to vouch that `subject` belongs to person `nullifier`."""
    nullifier = nullifier.lower()
    if not nullifier.startswith("0x") or len(nullifier) != 66:
        raise ValueError("nullifier must be 32 bytes as 0x-prefixed hex")
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_NO_CONTRACT, "UniquenessCredential": CREDENTIAL_TYPE},
        "primaryType": "UniquenessCredential",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": int(chain_id)},
        "message": {
            "subject": to_checksum_address(subject),
            "nullifier": nullifier,
            "expiresAt": int(expires_at),
        },
    }


def sign_typed_data(full_message: dict, private_key: str) -> str:
    """0x-prefixed 65-byte signature (what a wallet's `eth_signTypedData_v4` returns)."""
    signed = Account.sign_message(encode_typed_data(full_message=full_message), private_key)
    return "0x" + bytes(signed.signature).hex()


def recover_signer(full_message: dict, signature: str) -> str:
    """Checksummed address that signed `full_message`; `SignatureError` if the signature is unusable."""
    try:
        sig = bytes.fromhex(signature.removeprefix("0x"))
        if len(sig) != 65:
            raise ValueError(f"a signature is 65 bytes, got {len(sig)}")
        return to_checksum_address(
            Account.recover_message(encode_typed_data(full_message=full_message), signature=sig)
        )
    except Exception as exc:  # noqa: BLE001 - eth_keys raises several types for bad signatures
        raise SignatureError(f"cannot recover a signer from this signature: {exc}") from exc
