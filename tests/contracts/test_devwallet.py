"""contracts.devwallet: sending as a wallet from the server, with dev keys on anvil's chain id only."""

from __future__ import annotations

import pytest
from eth_account import Account

from contracts import chain
from contracts.devwallet import DevSendRefused, dev_send, wallet_send
from tests.anvil import DEV_KEYS

RECIPIENT = "0x" + "42" * 20


def test_dev_send_signs_as_the_dev_account_and_waits_for_the_receipt(fake_chain):
    # when
    tx_hash = dev_send({"to": RECIPIENT, "data": "0x", "value": "0x2a"}, DEV_KEYS[3])
    # then
    receipt = chain.get_receipt(tx_hash)
    assert receipt["status"] == 1 and receipt["from"] == Account.from_key(DEV_KEYS[3]).address
    assert fake_chain.pending == {} and fake_chain.nonces[receipt["from"]] == 1


@pytest.mark.parametrize(("configured", "node"), [(1, 1), (80002, 80002), (31337, 1), (1, 31337)])
def test_dev_send_refuses_any_chain_but_anvil(fake_chain, settings, configured, node):
    # given
    settings.CHAIN_ID, fake_chain.chain_id = configured, node
    # when / then
    with pytest.raises(DevSendRefused, match="on anvil \\(chain id 31337\\) only"):
        dev_send({"to": RECIPIENT, "value": 1}, DEV_KEYS[3])
    assert fake_chain.receipts == {} and fake_chain.pending == {}


def test_dev_send_refuses_the_platform_signer(fake_chain):
    with pytest.raises(DevSendRefused, match="platform signer"):
        dev_send({"to": RECIPIENT, "value": 1}, DEV_KEYS[0])
    assert fake_chain.receipts == {}


def test_wallet_send_works_on_any_chain_with_the_holders_key(fake_chain, settings):
    # given: a testnet, and a creator's own key (not a dev key)
    settings.CHAIN_ID = fake_chain.chain_id = 80002
    key = "0x" + "5a" * 32
    # when
    tx_hash = wallet_send({"to": RECIPIENT, "value": 3}, key)
    # then
    assert chain.get_receipt(tx_hash)["from"] == Account.from_key(key).address
