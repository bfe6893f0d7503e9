"""Fixtures of the marketplace tests: a model NFT minted on the fake chain to its owner, and wallets."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from eth_account import Account
from eth_utils import keccak

from contracts import chain
from contracts.devwallet import dev_send
from contracts.indexer import chain_index_events
from marketplace.services import marketplace_sync_chain_events, token_get
from tests.anvil import DEV_KEYS
from tests.tasks.factories import TaskFactory, UserFactory

OWNER_KEY, BUYER_KEY, OTHER_KEY = DEV_KEYS[2], DEV_KEYS[3], DEV_KEYS[4]


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache (the browse filter's dataset list is cached for a minute)."""
    cache.clear()
    yield
    cache.clear()


def user_of(key: str):
    return UserFactory(username=Account.from_key(key).address)


def send(call: dict, key: str, **overrides) -> str:
    """The wallet `key` sends `call` (as a page's wallet would); returns the tx hash."""
    tx = {"to": call["to"], "data": call["data"], "value": call.get("value", "0x0"), **overrides}
    return dev_send(tx, key)


def sync() -> dict:
    chain_index_events()
    return marketplace_sync_chain_events()


@pytest.fixture
def owner(db):
    return user_of(OWNER_KEY)


@pytest.fixture
def buyer(db):
    return user_of(BUYER_KEY)


@pytest.fixture
def minted(fake_chain, owner):
    """Task 1's model NFT minted to `owner` (royalty 10 % to the pool), stakes opened, indexed and synced."""
    task = TaskFactory(creator=owner, status="completed", chain_task_id=1)
    mint = chain.build_call(
        "ModelNFT",
        "mint",
        [owner.username, 1, keccak(text="model-1"), fake_chain.addresses["StakeToken"], 1000],
    )
    dev_send(
        {"to": mint["to"], "data": mint["data"], "value": "0x0"}, DEV_KEYS[1]
    )  # no roles on the fake chain
    fake_chain.stakes[1] = {"root": "0x" + "22" * 32, "deposited": 0, "claimed": {}, "withdrawn": {}}
    sync()
    token = token_get(token_id=1)
    assert token.task == task and token.owner == owner.username
    return token
