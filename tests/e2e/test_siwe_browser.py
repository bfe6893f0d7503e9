"""Real browser (Debian chromium via Python playwright) signing in through static/js/wallet.js.

A fake EIP-1193 ``window.ethereum`` forwards requests to Python, which signs with eth_account.
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
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        _MAY_SKIP and importlib.util.find_spec("playwright") is None, reason="playwright is not installed"
    ),
    pytest.mark.skipif(
        _MAY_SKIP and not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (apt-get install -y chromium)"
    ),
]


class FakeWallet:
    """Answers the handful of EIP-1193 calls wallet.js makes; starts on chain 1 to exercise switching."""

    def __init__(self, account) -> None:
        self.account = account
        self.chain_id = 1
        self.calls: list[str] = []

    def __call__(self, method: str, params: list):
        self.calls.append(method)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.account.address.lower()]  # wallets often return lowercase; the server checksums
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "wallet_switchEthereumChain":
            self.chain_id = int(params[0]["chainId"], 16)
            return None
        if method == "personal_sign":
            data, address = params
            assert address.lower() == self.account.address.lower()
            text = bytes.fromhex(data.removeprefix("0x")).decode()
            signed = Account.sign_message(encode_defunct(text=text), private_key=self.account.key)
            return "0x" + signed.signature.hex().removeprefix("0x")
        raise RuntimeError(f"unsupported method {method}")


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
            browser.close()


def test_sign_in_with_wallet_in_a_real_browser(live_server, transactional_db, chromium_page):
    # given
    page = chromium_page
    wallet = FakeWallet(Account.create())
    page.expose_function("__walletRequest", wallet)
    page.add_init_script(SHIM)
    # The live server's first request imports the URLconf (web3, DRF, ...): seconds on a busy machine.
    page.goto(f"{live_server.url}/accounts/login/?next=/accounts/login/", timeout=120_000)
    assert page.locator("#wallet-missing").is_hidden()
    # when
    page.get_by_role("button", name="Sign in with wallet").click()
    # then: redirected (an authenticated visit to the login page goes on to the home page) and signed in
    who = page.locator(".who")
    who.wait_for()
    assert who.get_attribute("title") == wallet.account.address
    assert "Successfully signed in" in page.content()
    assert wallet.calls[:3] == ["eth_requestAccounts", "eth_chainId", "wallet_switchEthereumChain"]
    assert "personal_sign" in wallet.calls


def test_login_page_without_a_wallet_explains_instead_of_a_button(
    live_server, transactional_db, chromium_page
):
    page = chromium_page
    page.goto(f"{live_server.url}/accounts/login/", timeout=120_000)
    assert page.get_by_text("No Ethereum wallet found in this browser").is_visible()
    assert page.get_by_role("button", name="Sign in with wallet").is_hidden()
    assert page.evaluate("typeof window.BCFLWallet.sendTransaction") == "function"
