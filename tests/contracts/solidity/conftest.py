"""Fixtures for the Solidity contract tests: one anvil (tests/conftest.py), one deployment, a snapshot per test.

Tests that use `env` (or `w3`, `accounts`) run on anvil and get the `anvil` marker; the rest need no node."""

from __future__ import annotations

import pytest
from web3 import Web3

from tests.contracts.solidity.helpers import Env, deploy_all


@pytest.fixture(scope="session")
def w3(anvil) -> Web3:
    web3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 60}))
    assert web3.is_connected()
    return web3


@pytest.fixture(scope="session")
def env(w3) -> Env:
    return deploy_all(w3)


@pytest.fixture(autouse=True)
def _isolate(request):
    """Every test on the chain starts from the freshly deployed state; the others (artifacts, Merkle) need no node."""
    if "env" not in request.fixturenames:
        yield
        return
    node = request.getfixturevalue("anvil")
    snap = node.snapshot()
    yield
    assert node.revert(snap)


@pytest.fixture
def accounts(env) -> list[str]:
    return env.accounts
