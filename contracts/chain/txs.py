"""Transactions: gas and fees, nonces, signing, broadcasting, receipts and revert reasons."""

from __future__ import annotations

from django.conf import settings
from eth_account import Account
from eth_utils import to_checksum_address
from web3.exceptions import TransactionNotFound, Web3RPCError

from contracts.chain.connection import get_w3
from contracts.chain.errors import ChainRejected, ChainRevert, classify, rpc_message, translated


def estimate_gas(tx: dict) -> int:
    """Gas estimate with 20 % headroom; a revert raises `ChainRevert` with the decoded error."""
    with translated():
        estimate = get_w3().eth.estimate_gas(tx)
    return int(estimate * 1.2) + 10_000 if tx.get("data") else int(estimate)


def fee_fields() -> dict:
    """EIP-1559 fees (wei): {maxPriorityFeePerGas, maxFeePerGas = 2 * base fee + tip, type: 2}."""
    with translated():
        w3 = get_w3()
        base = int(w3.eth.get_block("latest").get("baseFeePerGas") or 0)
        try:
            tip = int(w3.eth.max_priority_fee)
        except Web3RPCError:
            tip = 10**9
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip, "type": 2}


def pending_nonce(address: str) -> int:
    """The node's transaction count of `address`, pending transactions included."""
    with translated():
        return int(get_w3().eth.get_transaction_count(to_checksum_address(address), "pending"))


def sign(tx: dict, private_key: str) -> tuple[str, str]:
    """Sign a complete transaction dict; returns (raw_tx hex, tx_hash hex), both 0x-prefixed. Needs no node."""
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
        message = rpc_message(exc).lower().replace(" ", "")
        if any(k.replace(" ", "") in message for k in _ALREADY_KNOWN):
            return "known"
        if any(k.replace(" ", "") in message for k in _NONCE_TOO_LOW):
            if get_receipt(tx_hash) is not None:
                return "mined"
            if transaction_known(tx_hash):
                return "known"
        raise ChainRejected(rpc_message(exc)) from exc
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
