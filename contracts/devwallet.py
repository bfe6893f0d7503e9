"""Send a transaction as a user's wallet would, from the server side: for development tools and tests only.

In production users' wallets sign in their browsers and the platform only verifies (`contracts.wallet_tx`);
the platform's own transactions go through the ledger (`contracts.services`). This module is what
`manage.py create_task`, the tests and the benchmarks use to play a creator or a buyer:

- `wallet_send(call, key)` signs the server-built call ({to, data, value}) with `key` and sends it, like
  MetaMask's `eth_sendTransaction`, on whatever chain is configured (a creator's own key file);
- `dev_send(call, key)` does the same for anvil's public dev accounts, and refuses on any chain but anvil's.
"""

from __future__ import annotations

from django.conf import settings
from eth_account import Account

from contracts import chain
from contracts.chain import ChainError
from contracts.devkeys import ANVIL_CHAIN_ID

# Fields a caller may fix instead of letting the node decide (e.g. a higher fee to replace a pending transaction).
_OVERRIDABLE = ("gas", "nonce", "maxFeePerGas", "maxPriorityFeePerGas")


class DevSendRefused(ChainError):
    """`dev_send` was asked to sign off anvil's chain id, or as the platform's own signer."""


def _value(value) -> int:
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    return int(value or 0)


def wallet_send(call: dict, key: str, *, wait: bool = True, timeout: float = 60.0) -> str:
    """Sign `call` ({to, data, value (int or 0x hex)}; optionally gas, nonce, fee fields) with `key` and send it.

    Returns the transaction hash (0x hex) once mined (`wait`) or once broadcast. Gas is estimated with headroom
    (a revert raises `ChainRevert` with the decoded error, and nothing is sent); the nonce is the sender's
    pending count. Errors: the gateway's `ChainError`s (`ChainUnavailable` if no receipt within `timeout` s).
    """
    sender = Account.from_key(key).address
    tx = {
        "to": call["to"],
        "data": call.get("data") or "0x",
        "value": _value(call.get("value")),
        "from": sender,
    }
    full = {
        **tx,
        **chain.fee_fields(),
        "gas": call["gas"] if "gas" in call else chain.estimate_gas(tx),
        "nonce": chain.pending_nonce(sender),
        "chainId": int(settings.CHAIN_ID),
    }
    full.update({k: int(call[k]) for k in _OVERRIDABLE if k in call})
    raw, tx_hash = chain.sign(full, key)
    chain.broadcast(raw, tx_hash)
    if wait:
        chain.wait_for_receipt(tx_hash, timeout=timeout)
    return tx_hash


def dev_send(call: dict, key: str, *, wait: bool = True, timeout: float = 60.0) -> str:
    """`wallet_send` as a development account, only on anvil: `CHAIN_ID` and the node must both be 31337.

    Refuses (`DevSendRefused`) on any other chain id, whatever the key, and refuses the platform signer's key
    (a transaction sent outside the ledger would take a nonce the ledger's worker counts on).
    """
    from contracts.signer import get_signer

    configured, actual = int(settings.CHAIN_ID), chain.actual_chain_id()
    if configured != ANVIL_CHAIN_ID or actual != ANVIL_CHAIN_ID:
        raise DevSendRefused(
            f"dev_send signs with development keys on anvil (chain id {ANVIL_CHAIN_ID}) only; this is chain id "
            f"{configured} (node reports {actual}). Use a real wallet."
        )
    if Account.from_key(key).address == get_signer().address:
        raise DevSendRefused(
            "dev_send refuses the platform signer's key: its transactions go through the ledger, which counts "
            "its nonces. Use another dev account (anvil #1-#9)."
        )
    return wallet_send(call, key, wait=wait, timeout=timeout)
