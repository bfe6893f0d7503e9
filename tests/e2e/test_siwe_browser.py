"""Real browser (Debian chromium via Python playwright) signing in through static/js/wallet.js.

A fake EIP-1193 ``window.ethereum`` forwards requests to Python, which signs with eth_account.
"""

from __future__ import annotations

from eth_account import Account

from tests.e2e.browser import BROWSER_MARKS, SHIM, FakeWallet

pytestmark = BROWSER_MARKS


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


def test_a_signature_by_another_key_is_refused_on_the_page(
    live_server, transactional_db, chromium_page, anvil, settings
):
    # given: a wallet whose signature is made by another key (the chain says the address is no contract wallet)
    settings.CHAIN_RPC_URL, settings.CHAIN_ID = anvil.url, 31337
    page = chromium_page
    wallet = FakeWallet(Account.create())
    wallet.signer = Account.create()
    page.expose_function("__walletRequest", wallet)
    page.add_init_script(SHIM)
    page.goto(f"{live_server.url}/accounts/login/", timeout=120_000)
    # when
    page.get_by_role("button", name="Sign in with wallet").click()
    # then: the reason on the page, and nobody signed in
    status = page.locator("#wallet-status")
    status.filter(has_text="not made by").wait_for()
    assert f"The signature was not made by {wallet.account.address}" in status.inner_text()
    assert page.locator(".who").count() == 0
    assert "personal_sign" in wallet.calls
