"""Browser harness for e2e tests: Debian chromium via Python playwright, and a fake EIP-1193 wallet.

`window.ethereum` forwards every request to Python (`FakeWallet`), which signs with eth_account and, for
transactions, signs locally and sends the raw transaction to a real anvil node.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHIM = """
window.ethereum = {
  isMetaMask: true,
  request: ({method, params}) => window.__walletRequest(method, params || []),
  on() {}, removeListener() {},
};
"""

# In CI (.ci/run installs both) a missing browser is a failure, not a skip.
_MAY_SKIP = not os.environ.get("CI")
BROWSER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        _MAY_SKIP and importlib.util.find_spec("playwright") is None, reason="playwright is not installed"
    ),
    pytest.mark.skipif(
        _MAY_SKIP and not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (apt-get install -y chromium)"
    ),
]


class FakeWallet:
    """Answers the EIP-1193 calls wallet.js makes; starts on chain 1 to exercise switching.

    With `rpc_url`, `eth_sendTransaction` is signed with the account's key and sent to that node, and
    receipt look-ups are forwarded there, as MetaMask would do against its configured network.
    """

    # reads a wallet answers from its node (MetaMask forwards them to the network's RPC URL)
    READS = ("eth_getTransactionReceipt", "eth_getBalance", "eth_blockNumber", "eth_call", "eth_estimateGas")

    def __init__(self, account, rpc_url: str | None = None, *, can_switch: bool = True) -> None:
        self.account = account
        self.rpc_url = rpc_url
        self.chain_id = 1
        self.can_switch = can_switch  # False: a wallet that stays on chain 1 (the user declined the switch)
        self.calls: list[str] = []
        self.sent: list[str] = []  # hashes of the transactions sent
        self.signer = account  # personal_sign key: another one makes a signature the site refuses

    def __call__(self, method: str, params: list):
        self.calls.append(method)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.account.address.lower()]  # wallets often return lowercase; the server checksums
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "wallet_switchEthereumChain":
            if not self.can_switch:
                raise RuntimeError("The user declined to switch networks.")
            self.chain_id = int(params[0]["chainId"], 16)
            return None
        if method == "personal_sign":
            data, address = params
            assert address.lower() == self.account.address.lower()
            text = bytes.fromhex(data.removeprefix("0x")).decode()
            signed = Account.sign_message(encode_defunct(text=text), private_key=self.signer.key)
            return "0x" + signed.signature.hex().removeprefix("0x")
        if method == "eth_sendTransaction" and self.rpc_url:
            return self._send(params[0])
        if method in self.READS and self.rpc_url:
            from tests.anvil import rpc

            return rpc(self.rpc_url, method, params)
        raise RuntimeError(f"unsupported method {method}")

    def _send(self, tx: dict) -> str:
        from tests.anvil import rpc

        assert tx.get("from", self.account.address).lower() == self.account.address.lower()
        nonce = int(rpc(self.rpc_url, "eth_getTransactionCount", [self.account.address, "pending"]), 16)
        value = tx.get("value", "0x0")
        value = int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value)
        body = {
            "to": tx["to"],
            "data": tx.get("data", "0x"),
            "value": value,
            "nonce": nonce,
            "chainId": self.chain_id,
            "gas": int(tx["gas"], 16) if tx.get("gas") else 500_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        }
        signed = Account.sign_transaction(body, self.account.key)
        raw = "0x" + signed.raw_transaction.hex().removeprefix("0x")
        tx_hash = rpc(self.rpc_url, "eth_sendRawTransaction", [raw])
        self.sent.append(tx_hash)
        return tx_hash


@pytest.fixture
def chromium_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # playwright's sync API runs an event loop in this thread; the live server thread does the DB work.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            _close_db_connections_of_this_context()
            browser.close()


def _close_db_connections_of_this_context() -> None:
    """Close the database connections the test opened while playwright's event loop ran in this thread.

    Django keeps a thread's connections in asgiref's `Local`, which switches to per-context storage while an
    event loop is running in the thread (playwright's sync API runs one). Once playwright stops, the test's
    connection is out of reach: nothing closes it and PostgreSQL cannot drop the test database at the end of
    the run. Connections inside a test transaction (the `db` fixture) are left to its rollback.
    """
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()
