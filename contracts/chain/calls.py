"""Deployed contracts: addresses, read-only calls, and unsigned transactions built from ABIs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from contracts.chain.abi import CONSTRUCTOR, ETH_TRANSFER, coerce_args, function_entry, load_artifact
from contracts.chain.connection import get_w3
from contracts.chain.errors import ChainError, translated


def deployment_address(name: str, chain_id: int | None = None) -> str:
    """The recorded address of contract `name` on `chain_id` (default `CHAIN_ID`); `ChainError` if none."""
    from contracts.models import Deployment

    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    try:
        return Deployment.objects.get(chain_id=chain_id, name=name).address
    except Deployment.DoesNotExist as exc:
        raise ChainError(
            f"{name} is not deployed on chain {chain_id}: run `manage.py deploy_contracts`"
        ) from exc


def contract(name: str, address: str | None = None):
    """A web3 contract object for `name`, at its recorded address on the current chain."""
    address = address or deployment_address(name)
    return get_w3().eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])


def call(name: str, function: str, args: list | tuple = (), address: str | None = None) -> Any:
    """A read-only call; returns what web3 decodes (use `json_safe` before storing)."""
    with translated():
        return getattr(contract(name, address).functions, function)(*args).call()


def has_code(address: str) -> bool:
    """Is there contract code at `address` on the node?"""
    with translated():
        return len(get_w3().eth.get_code(to_checksum_address(address))) > 0


# EIP-1271: bytes4(keccak256("isValidSignature(bytes32,bytes)")), also the "valid" magic value it returns.
EIP1271_MAGIC_VALUE = bytes.fromhex("1626ba7e")


def eip1271_call(address: str, message_hash: bytes, signature: bytes, timeout: float = 10.0) -> bytes:
    """The raw return data of `isValidSignature(bytes32 message_hash, bytes signature)` (EIP-1271) at `address`.

    An `eth_call` on the latest block of `CHAIN_RPC_URL` with a `timeout` in seconds (a sign-in waits for it).
    Returns the bytes as the contract returned them (a valid EIP-1271 answer is 32 bytes starting with
    `EIP1271_MAGIC_VALUE`); the caller judges them. Raises `ChainRevert` when the call reverts (e.g. a contract
    without the function), `ChainUnavailable` when the node does not answer.
    """
    if len(message_hash) != 32:
        raise ValueError(f"message_hash must be 32 bytes, got {len(message_hash)}")
    data = EIP1271_MAGIC_VALUE + abi_encode(["bytes32", "bytes"], [message_hash, signature])
    with translated():
        return bytes(
            get_w3(timeout=timeout).eth.call({"to": to_checksum_address(address), "data": "0x" + data.hex()})
        )


def build_call(
    contract_name: str, function: str, args: list | tuple = (), value: int = 0, sender: str = ""
) -> dict:
    """An unsigned transaction dict {to?, data, value, from} for a contract call, a deployment or a transfer.

    `ChainError` if the contract has no such function (or is not deployed). Needs no node.
    """
    args = list(args or [])
    tx: dict[str, Any] = {"value": int(value)}
    if sender:
        tx["from"] = to_checksum_address(sender)
    if function == ETH_TRANSFER:
        tx["to"] = to_checksum_address(args[0])
        tx["data"] = b""
        return tx
    artifact = load_artifact(contract_name)
    if function == CONSTRUCTOR:
        entry = next((e for e in artifact["abi"] if e.get("type") == "constructor"), {"inputs": []})
        factory = get_w3().eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx["data"] = factory.constructor(*coerce_args(entry["inputs"], args)).data_in_transaction
        return tx
    entry = function_entry(contract_name, function, len(args))
    if entry is None:
        raise ChainError(f"{contract_name} has no function {function} taking {len(args)} arguments")
    c = contract(contract_name)
    tx["to"] = c.address
    tx["data"] = c.encode_abi(function, args=coerce_args(entry["inputs"], args))
    return tx
