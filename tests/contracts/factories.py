"""factory_boy factories for the chain ledger rows (`Deployment`, `ChainTx`, `ChainEvent`).

Values are deterministic per sequence number; hashes and addresses are keccak digests of readable text.
"""

from __future__ import annotations

import factory
from eth_utils import keccak, to_checksum_address
from factory.django import DjangoModelFactory

from contracts.models import ChainEvent, ChainTx, Deployment


def fake_hash(text: str) -> str:
    """A 0x-prefixed 32-byte hex hash of `text` (for tx and block hashes)."""
    return "0x" + keccak(text=text).hex()


def fake_address(text: str) -> str:
    return to_checksum_address(keccak(text=text)[-20:])


class DeploymentFactory(DjangoModelFactory):
    class Meta:
        model = Deployment
        django_get_or_create = ("chain_id", "name")

    chain_id = 31337
    name = "TaskRegistry"
    address = factory.LazyAttribute(lambda o: fake_address(f"deployment:{o.chain_id}:{o.name}"))
    tx_hash = factory.LazyAttribute(lambda o: fake_hash(f"deploy:{o.chain_id}:{o.name}"))
    block_number = 1


class ChainTxFactory(DjangoModelFactory):
    """A queued platform transaction; pass `status`, `tx_hash`, `nonce`, ... for later states."""

    class Meta:
        model = ChainTx

    idempotency_key = factory.Sequence(lambda i: f"test-tx:{i}")
    chain_id = 31337
    contract_name = "TaskRegistry"
    function = "commitRound"
    args = factory.LazyFunction(list)
    status = ChainTx.Status.QUEUED


class ChainEventFactory(DjangoModelFactory):
    """An indexed event; `args` as the indexer stores them (JSON-safe: checksummed addresses, 0x hex)."""

    class Meta:
        model = ChainEvent

    chain_id = 31337
    contract_name = "TaskRegistry"
    address = factory.LazyAttribute(lambda o: fake_address(f"deployment:{o.chain_id}:{o.contract_name}"))
    event = "TaskCreated"
    args = factory.LazyFunction(dict)
    block_number = factory.Sequence(lambda i: i + 1)
    block_hash = factory.LazyAttribute(lambda o: fake_hash(f"block:{o.block_number}"))
    tx_hash = factory.Sequence(lambda i: fake_hash(f"event-tx:{i}"))
    log_index = 0
