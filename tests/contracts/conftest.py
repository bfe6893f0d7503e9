"""Fixtures for the ledger tests: settings pointed at a real anvil, fresh nodes, deployed contracts."""

from __future__ import annotations

import pytest

from tests.anvil import Anvil


def point_at(settings, url: str, *, chain_id: int = 31337, key: str = "") -> None:
    settings.CHAIN_RPC_URL = url
    settings.CHAIN_ID = chain_id
    settings.CHAIN_SIGNER_KEY = key
    settings.CHAIN_KEYSTORE_FILE = ""
    settings.CHAIN_KEYSTORE_PASSWORD = ""
    settings.CHAIN_CONFIRMATIONS = 0
    settings.CHAIN_RECEIPT_TIMEOUT = 20


@pytest.fixture
def chain_settings(settings, anvil):
    """Settings for the session anvil, signing with anvil dev key #0 (the default on chain 31337)."""
    point_at(settings, anvil.url)
    return settings


@pytest.fixture
def fresh_anvil(tmp_path):
    """A separate anvil (fresh state: every nonce starts at 0), stopped after the test."""
    node = Anvil().start()
    yield node
    node.stop()


@pytest.fixture
def fresh_chain(settings, fresh_anvil):
    point_at(settings, fresh_anvil.url)
    return fresh_anvil


@pytest.fixture
def deployed(chain_settings):
    """The five contracts, deployed through the ledger on the session anvil for this test's DB."""
    from contracts.deployment import deploy_contracts

    return deploy_contracts(log=lambda _msg: None)
