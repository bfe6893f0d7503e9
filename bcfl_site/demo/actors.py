"""The people of the demo story: anvil dev accounts that sign in to the site over HTTP (SIWE, an API token) and
send their own transactions as a browser wallet would (`contracts.devwallet.dev_send`), each send recorded with
its gas for the summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts import chain
from contracts.devkeys import ANVIL_DEV_KEYS
from contracts.devwallet import dev_send
from training.client import api
from training.client.wallet import Wallet


@dataclass
class WalletTx:
    """One transaction a person's wallet sent: who, what (e.g. "Marketplace.buyLicence"), hash, gas used."""

    who: str
    what: str
    tx_hash: str
    gas_used: int


@dataclass
class Actor:
    """A person with an anvil dev account (index 1-9) and, once `sign_in` ran, an API client with a token."""

    role: str
    dev_index: int
    client: api.Client | None = None
    sent: list[WalletTx] = field(default_factory=list)

    @property
    def key(self) -> str:
        return ANVIL_DEV_KEYS[self.dev_index]

    @property
    def wallet(self) -> Wallet:
        from eth_account import Account

        return Wallet(address=Account.from_key(self.key).address, private_key=self.key)

    @property
    def address(self) -> str:
        return self.wallet.address

    def sign_in(self, site: str) -> api.Client:
        """SIWE over HTTP (nonce, EIP-4361 message signed with the key, token); raises `api.ApiError`."""
        self.client = api.Client(site, timeout=60.0)
        self.client.login(self.wallet)
        return self.client

    @property
    def user(self):
        """The site's user row for this wallet (created by the sign-in)."""
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get(username=self.address)

    def send(self, call: dict, what: str) -> str:
        """Sign and send `call` ({to, data, value}) from this wallet, wait for the receipt; returns the hash."""
        tx_hash = dev_send(call, self.key, timeout=60)
        receipt = chain.get_receipt(tx_hash) or {}
        self.sent.append(WalletTx(self.role, what, tx_hash, int(receipt.get("gasUsed", 0))))
        return tx_hash

    def api(self, method: str, path: str, body=None, *, expect=(200, 201)):
        """An authenticated JSON request; raises `api.ApiError` on any other status."""
        status, payload = self.api_status(method, path, body)
        if status not in expect:
            raise api.ApiError(f"The site answered {status} to {method} {path}: {payload}", status=status)
        return payload

    def api_status(self, method: str, path: str, body=None) -> tuple[int, object]:
        assert self.client is not None, "sign_in first"
        return self.client.request(method, path, body, auth=True)
