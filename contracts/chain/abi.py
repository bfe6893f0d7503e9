"""Contract names, artifacts and ABI argument coercion (no node needed)."""

from __future__ import annotations

import hashlib
from typing import Any

from eth_utils import to_checksum_address

CONTRACT_NAMES = [
    "IdentityRegistry",
    "StakeToken",
    "TaskRegistry",
    "ModelNFT",
    "Marketplace",
]  # deployment order
# A plain value transfer: `ChainTx(contract_name="", function=ETH_TRANSFER, args=[to_address])`.
ETH_TRANSFER = "eth_transfer"
CONSTRUCTOR = "constructor"


def load_artifact(name: str) -> dict:
    """The compiled artifact of contract `name` (abi, bytecode, ...); `FileNotFoundError` if missing."""
    from contracts.artifacts import load_artifact as _load

    return _load(name)


def bytecode_sha256(name: str) -> str:
    """sha256 (hex) of the contract's creation bytecode, as recorded on `Deployment` rows."""
    code = load_artifact(name)["bytecode"]
    return hashlib.sha256(code.removeprefix("0x").encode()).hexdigest()


def abi_type(param: dict) -> str:
    """The canonical type string of an ABI parameter (tuples spelled out: "(uint256,address)[]")."""
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in param["components"]) + ")" + t[len("tuple") :]
    return t


def _coerce(param_type: str, components: list | None, value: Any) -> Any:
    """JSON-stored value -> what eth_abi wants (ints from strings, bytes from 0x hex, tuples)."""
    if param_type.endswith("]"):
        inner = param_type[: param_type.rindex("[")]
        return [_coerce(inner, components, v) for v in value]
    if param_type.startswith("tuple"):
        items = value.values() if isinstance(value, dict) else value
        return tuple(
            _coerce(c["type"], c.get("components"), v) for c, v in zip(components or [], items, strict=True)
        )
    if param_type.startswith(("uint", "int")) and isinstance(value, str):
        return int(value, 0)
    if param_type.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    if param_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    return value


def coerce_args(inputs: list[dict], args: list) -> list:
    """JSON-stored arguments -> values eth_abi encodes, one per ABI input."""
    return [_coerce(p["type"], p.get("components"), a) for p, a in zip(inputs, args, strict=True)]


def function_entry(contract_name: str, function: str, n_args: int) -> dict | None:
    """The ABI entry of `function` taking `n_args` arguments, or None."""
    for entry in load_artifact(contract_name)["abi"]:
        if entry.get("type") == "function" and entry["name"] == function and len(entry["inputs"]) == n_args:
            return entry
    return None
