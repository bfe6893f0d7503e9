"""JSON helpers shared by the gateway modules: what web3 returns -> what JSON fields and pages can hold."""

from __future__ import annotations

from typing import Any

_MAX_SAFE_INT = 2**53


def hexstr(value: Any) -> str:
    """bytes -> "0x…" hex; a string is returned with a 0x prefix."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def json_safe(value: Any) -> Any:
    """bytes -> 0x hex, ints beyond 2**53 -> str, tuples -> lists, mappings -> dicts."""
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) > _MAX_SAFE_INT else value
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def receipt_summary(receipt: dict) -> dict:
    """{status, block_number, gas_used, effective_gas_price (wei), contract_address, tx_hash} of a receipt."""
    return {
        "status": int(receipt["status"]),
        "block_number": int(receipt["blockNumber"]),
        "gas_used": int(receipt["gasUsed"]),
        "effective_gas_price": int(receipt.get("effectiveGasPrice") or 0),
        "contract_address": receipt.get("contractAddress") or "",
        "tx_hash": hexstr(receipt["transactionHash"]),
    }
