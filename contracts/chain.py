"""The chain gateway: THE ONLY module that imports web3 (enforced by tests/contracts_ledger/test_lint.py).

Everything else talks to the chain through these functions and sees three kinds of failure:
- `ChainRevert`: the EVM said no (decoded custom error / reason). Never retried.
- `ChainUnavailable`: the node could not be reached or did not answer in time. Retry later.
- `ChainRejected`: the node refused a signed transaction for another reason (funds, nonce, ...).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from django.conf import settings
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)

logger = logging.getLogger(__name__)

CONTRACT_NAMES = ["IdentityRegistry", "TaskRegistry", "ModelNFT", "StakeToken", "Marketplace"]
# A plain value transfer: `ChainTx(contract_name="", function=ETH_TRANSFER, args=[to_address])`.
ETH_TRANSFER = "eth_transfer"
CONSTRUCTOR = "constructor"

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


# --- connection ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _w3_for(url: str, timeout: float) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


def get_w3(url: str | None = None) -> Web3:
    """A Web3 client for `url` (default `CHAIN_RPC_URL`), cached per URL."""
    return _w3_for(url or settings.CHAIN_RPC_URL, 30.0)


def chain_status(timeout: float = 2.0) -> dict:
    """Connectivity summary for pages and health checks; never raises."""
    status = {"connected": False, "chain_id": None, "block_number": None, "error": "",
              "rpc_url": settings.CHAIN_RPC_URL, "expected_chain_id": settings.CHAIN_ID}  # fmt: skip
    try:
        w3 = _w3_for(settings.CHAIN_RPC_URL, timeout)
        status["chain_id"] = w3.eth.chain_id
        status["block_number"] = w3.eth.block_number
        status["connected"] = True
        if status["chain_id"] != settings.CHAIN_ID:
            status["error"] = f"node reports chain id {status['chain_id']}, expected {settings.CHAIN_ID}"
    except Exception as exc:  # noqa: BLE001 - a status probe reports, it does not raise
        status["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return status


# --- ABIs and error decoding --------------------------------------------------------------------


def load_artifact(name: str) -> dict:
    from contracts.artifacts import load_artifact as _load

    return _load(name)


def bytecode_sha256(name: str) -> str:
    code = load_artifact(name)["bytecode"]
    return hashlib.sha256(code.removeprefix("0x").encode()).hexdigest()


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


def _abi_type(param: dict) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + t[len("tuple") :]
    return t


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
            values = abi_decode([_abi_type(p) for p in entry["inputs"]], payload)
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
        return ChainRejected(_rpc_message(exc))
    return ChainError(f"{type(exc).__name__}: {exc}"[:500])


def _rpc_message(exc: Web3RPCError) -> str:
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


# --- contracts ----------------------------------------------------------------------------------


def deployment_address(name: str, chain_id: int | None = None) -> str:
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
    with translated():
        return len(get_w3().eth.get_code(to_checksum_address(address))) > 0


def build_call(contract_name: str, function: str, args: list | tuple = (), value: int = 0,
               sender: str = "") -> dict:  # fmt: skip
    """An unsigned transaction dict {to?, data, value, from} for a contract call, a deployment or a transfer."""
    args = list(args or [])
    tx: dict[str, Any] = {"value": int(value)}
    if sender:
        tx["from"] = to_checksum_address(sender)
    if function == ETH_TRANSFER:
        tx["to"] = to_checksum_address(args[0])
        tx["data"] = b""
        return tx
    w3 = get_w3()
    artifact = load_artifact(contract_name)
    if function == CONSTRUCTOR:
        entry = next((e for e in artifact["abi"] if e.get("type") == "constructor"), {"inputs": []})
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx["data"] = factory.constructor(*coerce_args(entry["inputs"], args)).data_in_transaction
        return tx
    candidates = [
        e for e in artifact["abi"]
        if e.get("type") == "function" and e["name"] == function and len(e["inputs"]) == len(args)
    ]  # fmt: skip
    if not candidates:
        raise ChainError(f"{contract_name} has no function {function} taking {len(args)} arguments")
    c = contract(contract_name)
    tx["to"] = c.address
    tx["data"] = c.encode_abi(function, args=coerce_args(candidates[0]["inputs"], args))
    return tx


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
    return [_coerce(p["type"], p.get("components"), a) for p, a in zip(inputs, args, strict=True)]


def estimate_gas(tx: dict) -> int:
    """Gas estimate with 20 % headroom; a revert raises `ChainRevert` with the decoded error."""
    with translated():
        estimate = get_w3().eth.estimate_gas(tx)
    return int(estimate * 1.2) + 10_000 if tx.get("data") else int(estimate)


def fee_fields() -> dict:
    """EIP-1559 fees: maxFee = 2 * base fee + tip."""
    with translated():
        w3 = get_w3()
        base = int(w3.eth.get_block("latest").get("baseFeePerGas") or 0)
        try:
            tip = int(w3.eth.max_priority_fee)
        except Web3RPCError:
            tip = 10**9
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip, "type": 2}


def pending_nonce(address: str) -> int:
    with translated():
        return int(get_w3().eth.get_transaction_count(to_checksum_address(address), "pending"))


def sign(tx: dict, private_key: str) -> tuple[str, str]:
    """Sign a complete transaction dict; returns (raw_tx hex, tx_hash hex), both 0x-prefixed."""
    tx = dict(tx)
    tx.pop("from", None)
    if isinstance(tx.get("data"), bytes):
        tx["data"] = "0x" + tx["data"].hex()
    signed = Account.sign_transaction(tx, private_key)
    return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()


_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")
_NONCE_TOO_LOW = ("nonce too low", "nonce is too low", "oldnonce")


def broadcast(raw_tx: str, tx_hash: str) -> str:
    """Send a signed transaction. Returns "sent", "known" (node already had it) or "mined" (receipt exists).

    "already known" and "nonce too low" answers for our own hash are success; other refusals raise
    `ChainRejected`, transport problems `ChainUnavailable`.
    """
    w3 = get_w3()
    try:
        w3.eth.send_raw_transaction(raw_tx)
        return "sent"
    except Web3RPCError as exc:
        message = _rpc_message(exc).lower().replace(" ", "")
        if any(k.replace(" ", "") in message for k in _ALREADY_KNOWN):
            return "known"
        if any(k.replace(" ", "") in message for k in _NONCE_TOO_LOW):
            if get_receipt(tx_hash) is not None:
                return "mined"
            if transaction_known(tx_hash):
                return "known"
        raise ChainRejected(_rpc_message(exc)) from exc
    except Exception as exc:
        raise classify(exc) from exc


def transaction_known(tx_hash: str) -> bool:
    """Is the transaction in the node's mempool or chain?"""
    with translated():
        try:
            return get_w3().eth.get_transaction(tx_hash) is not None
        except TransactionNotFound:
            return False


def get_receipt(tx_hash: str) -> dict | None:
    """The receipt, or None if not mined (yet)."""
    with translated():
        try:
            return dict(get_w3().eth.get_transaction_receipt(tx_hash))
        except TransactionNotFound:
            return None


def wait_for_receipt(tx_hash: str, timeout: float | None = None) -> dict:
    """Wait for the receipt; `ChainUnavailable` on timeout (the transaction may still be mined later)."""
    timeout = settings.CHAIN_RECEIPT_TIMEOUT if timeout is None else timeout
    with translated():
        return dict(get_w3().eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.1))


def revert_reason_of(receipt: dict) -> ChainRevert:
    """Replay a failed (status 0) transaction as a call at its block's parent to recover the reason."""
    w3 = get_w3()
    try:
        tx = w3.eth.get_transaction(receipt["transactionHash"])
        call_tx = {
            "from": tx["from"],
            "to": tx["to"],
            "data": tx["input"],
            "value": tx["value"],
            "gas": tx["gas"],
        }
        w3.eth.call(call_tx, block_identifier=max(int(receipt["blockNumber"]) - 1, 0))
    except Exception as exc:  # noqa: BLE001
        err = classify(exc)
        if isinstance(err, ChainRevert):
            return err
        return ChainRevert(f"reverted (reason unavailable: {err})")
    return ChainRevert("reverted (replay did not revert)")


def block_number() -> int:
    with translated():
        return int(get_w3().eth.block_number)


def actual_chain_id() -> int:
    with translated():
        return int(get_w3().eth.chain_id)


# --- events -------------------------------------------------------------------------------------


def _event_table(name: str) -> dict[bytes, dict]:
    return {event_abi_to_log_topic(e): e for e in load_artifact(name)["abi"] if e.get("type") == "event"}


def _decode_log(name: str, address: str, log: dict) -> dict | None:
    topics = log.get("topics") or []
    if not topics:
        return None
    entry = _event_table(name).get(bytes(topics[0]))
    if entry is None:
        return None
    c = get_w3().eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])
    event = c.events[entry["name"]]().process_log(log)
    return {
        "contract_name": name,
        "address": to_checksum_address(address),
        "event": entry["name"],
        "args": json_safe(dict(event["args"])),
        "block_number": int(log["blockNumber"]),
        "block_hash": _hex(log["blockHash"]),
        "tx_hash": _hex(log["transactionHash"]),
        "log_index": int(log["logIndex"]),
    }


def decode_logs(contract_name: str, receipt: dict) -> list[dict]:
    """Decoded events of `contract_name` (at its deployed address) in a receipt."""
    address = to_checksum_address(deployment_address(contract_name))
    out = []
    for log in receipt.get("logs", []):
        if to_checksum_address(log["address"]) == address:
            decoded = _decode_log(contract_name, address, log)
            if decoded:
                out.append(decoded)
    return out


def get_logs(from_block: int, to_block: int, chain_id: int | None = None) -> list[dict]:
    """Decoded events of every deployed contract on the chain, in block/log order."""
    from contracts.models import Deployment

    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    by_address = {
        to_checksum_address(d.address): d.name for d in Deployment.objects.filter(chain_id=chain_id)
    }
    if not by_address or to_block < from_block:
        return []
    with translated():
        logs = get_w3().eth.get_logs(
            {"fromBlock": from_block, "toBlock": to_block, "address": list(by_address)}
        )
        out = []
        for log in logs:
            address = to_checksum_address(log["address"])
            decoded = _decode_log(by_address[address], address, dict(log)) if address in by_address else None
            if decoded:
                out.append(decoded)
    out.sort(key=lambda e: (e["block_number"], e["log_index"]))
    return out


# --- JSON helpers -------------------------------------------------------------------------------

_MAX_SAFE_INT = 2**53


def _hex(value: Any) -> str:
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
    return {
        "status": int(receipt["status"]),
        "block_number": int(receipt["blockNumber"]),
        "gas_used": int(receipt["gasUsed"]),
        "effective_gas_price": int(receipt.get("effectiveGasPrice") or 0),
        "contract_address": receipt.get("contractAddress") or "",
        "tx_hash": _hex(receipt["transactionHash"]),
    }
