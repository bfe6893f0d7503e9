"""The connection to the node named by `CHAIN_RPC_URL`, and what the node says about itself."""

from __future__ import annotations

import functools

from django.conf import settings
from web3 import Web3

from contracts.chain.errors import translated


@functools.lru_cache(maxsize=16)
def _w3_for(url: str, timeout: float) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


def get_w3(url: str | None = None, timeout: float = 30.0) -> Web3:
    """A Web3 client for `url` (default `CHAIN_RPC_URL`) whose requests time out after `timeout` seconds,
    cached per (URL, timeout)."""
    return _w3_for(url or settings.CHAIN_RPC_URL, float(timeout))


def chain_status(timeout: float = 2.0) -> dict:
    """Connectivity summary for pages and health checks; never raises.

    {connected, chain_id, block_number, error, rpc_url, expected_chain_id}; `error` is set when the node is
    unreachable or reports another chain id than `CHAIN_ID`.
    """
    status = {
        "connected": False,
        "chain_id": None,
        "block_number": None,
        "error": "",
        "rpc_url": settings.CHAIN_RPC_URL,
        "expected_chain_id": settings.CHAIN_ID,
    }
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


def block_number() -> int:
    """The node's latest block number; `ChainUnavailable` if it does not answer."""
    with translated():
        return int(get_w3().eth.block_number)


def actual_chain_id() -> int:
    """The chain id the node reports (not the configured `CHAIN_ID`)."""
    with translated():
        return int(get_w3().eth.chain_id)
