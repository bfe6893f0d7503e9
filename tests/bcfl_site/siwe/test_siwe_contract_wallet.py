"""Sign-in with a smart-contract wallet (EIP-1271) on anvil: an owner-based test wallet signs in as its own address;
a wrong signer, a contract without isValidSignature and an unreachable chain are refused with their reason."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from bcfl_site.siwe.testing import siwe_message_build, siwe_sign
from contracts.artifacts import load_artifact

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/siwe/token"


@pytest.fixture
def on_anvil(settings, anvil):
    settings.CHAIN_RPC_URL, settings.CHAIN_ID = anvil.url, 31337
    return Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))


def _deploy(w3: Web3, name: str, *args) -> str:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    # Dev account #8: the other anvil tests sign with the low accounts.
    tx_hash = factory.constructor(*args).transact({"from": w3.eth.accounts[8]})
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["contractAddress"]


@pytest.fixture
def owner():
    return Account.create()


@pytest.fixture
def wallet_contract(on_anvil, owner) -> str:
    return _deploy(on_anvil, "ERC1271Wallet", owner.address)


def _contract_sign_in(browser, address: str, signer) -> tuple[dict, object]:
    """Sign in through the browser endpoints as ``address``, the message signed by ``signer``'s key."""
    challenge = browser.challenge(address)
    message = siwe_message_build(challenge, address=challenge["address"])
    response = browser.verify(message, siwe_sign(message, signer), address=challenge["address"])
    return response.json(), response


def test_owner_signature_signs_the_contract_wallet_in(browser, wallet_contract, owner, django_user_model):
    # when
    body, response = _contract_sign_in(browser, wallet_contract, owner)
    # then
    assert response.status_code == 200, body
    assert body["address"] == wallet_contract
    user = django_user_model.objects.get(pk=browser.session["_auth_user_id"])
    assert user.username == wallet_contract


def test_owner_signature_gets_an_api_token_for_the_contract_wallet(wallet_contract, owner):
    from rest_framework.test import APIClient

    api = APIClient(enforce_csrf_checks=True)
    challenge = api.post("/api/v1/auth/siwe/nonce").json()
    message = siwe_message_build(challenge, address=wallet_contract)
    response = api.post(
        TOKEN_URL, {"message": message, "signature": siwe_sign(message, owner)}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["address"] == wallet_contract


def test_wrong_signer_is_refused_with_the_wallets_answer(browser, wallet_contract):
    body, response = _contract_sign_in(browser, wallet_contract, Account.create())
    assert response.status_code == 400
    assert body["code"] == "contract_wallet_invalid"
    assert f"The smart-contract wallet {wallet_contract} did not accept this signature" in body["error"]
    assert "answered 0xffffffff, not the EIP-1271 magic value 0x1626ba7e" in body["error"]
    assert "_auth_user_id" not in browser.session


def test_signature_over_another_message_is_refused(browser, wallet_contract, owner):
    challenge = browser.challenge(wallet_contract)
    message = siwe_message_build(challenge, address=challenge["address"])
    response = browser.verify(message, siwe_sign(message + " ", owner))
    assert response.json()["code"] == "contract_wallet_invalid"


def test_contract_without_eip1271_is_refused_as_reverted(browser, on_anvil, owner):
    # given: a contract with no isValidSignature and no fallback
    plain = _deploy(on_anvil, "RevertingReceiver")
    # when
    body, response = _contract_sign_in(browser, plain, owner)
    # then
    assert response.status_code == 400
    assert body["code"] == "contract_wallet_reverted"
    assert f"The contract at {plain} refused the signature check: isValidSignature reverted" in body["error"]
    assert "_auth_user_id" not in browser.session


def test_ordinary_account_still_signs_in_and_a_wrong_key_is_still_wrong_signer(browser, on_anvil, owner):
    response = browser.sign_in(owner)
    assert response.status_code == 200, response.content
    other = Account.create()
    body, response = _contract_sign_in(browser, other.address, owner)
    assert (response.status_code, body["code"]) == (400, "signature")


def test_node_on_another_chain_is_refused(browser, wallet_contract, owner, settings):
    settings.CHAIN_ID = 31338  # the message is for 31338 too, but the node is anvil's 31337
    body, response = _contract_sign_in(browser, wallet_contract, owner)
    assert body["code"] == "chain_unavailable"
    assert "its node is on chain id 31337, not 31338" in body["error"]


def test_unreachable_chain_is_refused_with_the_reason(browser, wallet_contract, owner, settings):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    body, response = _contract_sign_in(browser, wallet_contract, owner)
    assert response.status_code == 400
    assert body["code"] == "chain_unavailable"
    assert f"could not ask the chain whether {wallet_contract} is a smart-contract wallet" in body["error"]
    assert "_auth_user_id" not in browser.session
