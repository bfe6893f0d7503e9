"""Fixtures for the Solidity contract tests: one anvil (tests/conftest.py), one deployment, a snapshot per test."""

from __future__ import annotations

import pytest
from web3 import Web3

from tests.contracts.helpers import Env, deploy_all


@pytest.fixture(scope="session")
def w3(anvil) -> Web3:
    web3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 60}))
    assert web3.is_connected()
    return web3


@pytest.fixture(scope="session")
def env(w3) -> Env:
    return deploy_all(w3)


@pytest.fixture(autouse=True)
def _isolate(anvil, env):
    """Every test starts from the freshly deployed state."""
    snap = anvil.snapshot()
    yield
    assert anvil.revert(snap)


@pytest.fixture
def accounts(env) -> list[str]:
    return env.accounts
