"""The gateway's three kinds of failure, and the translation of web3/requests exceptions and revert data into them.

- `ChainRevert`: the EVM said no (decoded custom error / reason). Never retried.
- `ChainUnavailable`: the node could not be reached or did not answer in time. Retry later.
- `ChainRejected`: the node refused a signed transaction for another reason (funds, nonce, ...).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from eth_abi import decode as abi_decode
from eth_utils import function_abi_to_4byte_selector
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    Web3RPCError,
)

from contracts.chain.abi import CONTRACT_NAMES, abi_type, load_artifact
from contracts.chain.values import json_safe

logger = logging.getLogger(__name__)

_ERROR_STRING_SELECTOR = "08c379a0"  # Error(string)
_PANIC_SELECTOR = "4e487b71"  # Panic(uint256)


class ChainError(Exception):
    """Base class of every error the gateway raises."""


class ChainUnavailable(ChainError):
    """Transient: connection refused/reset, timeouts, receipt not there yet. Safe to retry."""


class ChainRejected(ChainError):
    """The node refused a transaction (insufficient funds, nonce too low, ...). Not transient."""


class ChainRevert(ChainError):
    """The EVM reverted; `error_name`/`error_args` come from the ABI's custom errors when they match."""

    def __init__(self, reason: str, error_name: str = "", error_args: dict | None = None, data: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.error_name = error_name
        self.error_args = error_args or {}
        self.data = data

    def as_text(self) -> str:
        return self.reason


@functools.lru_cache(maxsize=1)
def _error_selectors() -> dict[str, dict]:
    """4-byte selector (hex, no 0x) -> error ABI entry, over every artifact's `type == "error"` entries."""
    table: dict[str, dict] = {}
    for name in CONTRACT_NAMES:
        try:
            abi = load_artifact(name)["abi"]
        except Exception as exc:  # noqa: BLE001 - a missing artifact just means fewer known errors
            logger.warning("no artifact for %s (%s): its custom errors will not be decoded", name, exc)
            continue
        for entry in abi:
            if entry.get("type") == "error":
                table.setdefault(function_abi_to_4byte_selector(entry).hex(), entry)
    return table


def decode_revert_data(data: str | bytes | None, message: str = "") -> ChainRevert:
    """Turn raw revert data into a `ChainRevert` (custom error, Error(string), Panic, or unknown)."""
    if isinstance(data, dict):  # some nodes wrap it: {"data": "0x..."}
        data = data.get("data")
    if isinstance(data, bytes | bytearray):
        data = "0x" + bytes(data).hex()
    hexdata = (data or "").removeprefix("0x").lower()
    if len(hexdata) < 8:
        return ChainRevert(message or "execution reverted", data="0x" + hexdata if hexdata else "")
    selector, payload = hexdata[:8], bytes.fromhex(hexdata[8:])
    try:
        if selector == _ERROR_STRING_SELECTOR:
            (text,) = abi_decode(["string"], payload)
            return ChainRevert(f"Error({text!r})", "Error", {"message": text}, data="0x" + hexdata)
        if selector == _PANIC_SELECTOR:
            (code,) = abi_decode(["uint256"], payload)
            return ChainRevert(f"Panic(0x{code:02x})", "Panic", {"code": code}, data="0x" + hexdata)
        entry = _error_selectors().get(selector)
        if entry:
            values = abi_decode([abi_type(p) for p in entry["inputs"]], payload)
            names = [p.get("name") or f"arg{i}" for i, p in enumerate(entry["inputs"])]
            args = {n: json_safe(v) for n, v in zip(names, values, strict=True)}
            shown = ", ".join(f"{n}={v}" for n, v in args.items())
            return ChainRevert(f"{entry['name']}({shown})", entry["name"], args, data="0x" + hexdata)
    except Exception:  # noqa: BLE001 - undecodable data still gets reported raw
        logger.warning("could not decode revert data 0x%s", hexdata)
    return ChainRevert(message or f"reverted with unknown error 0x{selector}", data="0x" + hexdata)


_TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
    TimeoutError,
    TimeExhausted,
    ProviderConnectionError,
    RequestTimedOut,
)


def classify(exc: BaseException) -> ChainError:
    """Map a web3/requests exception to the gateway's error types."""
    if isinstance(exc, ChainError):
        return exc
    if isinstance(exc, ContractLogicError):
        return decode_revert_data(exc.data, exc.message or str(exc))
    if isinstance(exc, _TRANSIENT):
        return ChainUnavailable(f"{type(exc).__name__}: {exc}"[:500])
    try:  # aiohttp is optional; its errors are transient too
        import aiohttp

        if isinstance(exc, aiohttp.ClientError | aiohttp.ServerTimeoutError):
            return ChainUnavailable(f"{type(exc).__name__}: {exc}"[:500])
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, Web3RPCError):
        return ChainRejected(rpc_message(exc))
    return ChainError(f"{type(exc).__name__}: {exc}"[:500])


def rpc_message(exc: Web3RPCError) -> str:
    """The node's own error message of a JSON-RPC error, else the exception's text."""
    response = getattr(exc, "rpc_response", None) or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(getattr(exc, "message", None) or exc)


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise anything web3 raises as a ChainError subclass."""
    try:
        yield
    except ChainError:
        raise
    except Exception as exc:
        raise classify(exc) from exc
