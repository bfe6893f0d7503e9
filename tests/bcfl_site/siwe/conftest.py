from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from eth_account import Account

from bcfl_site.siwe.testing import siwe_message_build, siwe_sign


class Browser:
    """A CSRF-enforcing test client that talks to the wallet endpoints like static/js/wallet.js does."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.client.get(reverse("account_login"))  # sets the csrftoken cookie

    def post_json(self, url: str, data: dict, *, csrf: bool = True):
        headers = {"HTTP_X_CSRFTOKEN": self.client.cookies["csrftoken"].value} if csrf else {}
        return self.client.post(url, json.dumps(data), content_type="application/json", **headers)

    def challenge(self, address: str | None = None) -> dict:
        response = self.post_json(reverse("siwe_nonce"), {"address": address} if address else {})
        assert response.status_code == 200, response.content
        return response.json()

    def verify(self, message: str, signature: str, **extra):
        return self.post_json(reverse("siwe_verify"), {"message": message, "signature": signature, **extra})

    def sign_in(self, account, **overrides):
        """Fetch a nonce, build (with overrides), sign with ``account`` and POST; returns the response."""
        challenge = self.challenge(account.address)
        message = siwe_message_build(challenge, address=challenge["address"], **overrides)
        return self.verify(message, siwe_sign(message, account))

    @property
    def session(self):
        return self.client.session


@pytest.fixture(autouse=True)
def _chain_for_contract_wallets(request):
    """A signature that is not the message address's own asks the chain whether that address is a contract
    wallet (EIP-1271): tests not on anvil get the in-memory chain, where no test wallet has code."""
    if "anvil" not in request.fixturenames:
        request.getfixturevalue("fake_chain")


@pytest.fixture
def browser(db) -> Browser:
    return Browser()


@pytest.fixture
def wallet():
    return Account.create()


@pytest.fixture
def other_wallet():
    return Account.create()
