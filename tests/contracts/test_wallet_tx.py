"""contracts.wallet_tx: a wallet-sent transaction is confirmed from its receipt and event, or refused in plain words.

The refusals run on a real anvil (marked `anvil`); replaced transactions and "not mined yet" on the fake chain.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from contracts import chain, wallet_tx
from contracts.devwallet import dev_send
from contracts.indexer import chain_index_events
from tests.anvil import DEV_KEYS
from tests.contracts.factories import ChainEventFactory

SPEC = "0x" + keccak(text="wallet-tx spec").hex()
REWARD = 10**16
ALICE, BOB = DEV_KEYS[2], DEV_KEYS[8]


def create_call(rounds: int = 2, value: int = REWARD) -> dict:
    tx = chain.build_call("TaskRegistry", "createTask", [SPEC, rounds, 500], value=value)
    return {"to": tx["to"], "data": "0x" + tx["data"].removeprefix("0x"), "value": hex(value)}


def confirm(tx_hash: str, key: str = ALICE, **overrides) -> wallet_tx.ConfirmedTx:
    sender = Account.from_key(key).address
    kwargs = {
        "tx_hash": tx_hash,
        "sender": sender,
        "contract_name": "TaskRegistry",
        "event_name": "TaskCreated",
        "expected_args": {
            "specHash": SPEC,
            "reward": REWARD,
            "rounds": 2,
            "creatorShareBps": 500,
            "creator": sender,
        },
        "action": "register this task",
        "who": "the task creator's wallet",
    }
    return wallet_tx.wallet_tx_confirm(**{**kwargs, **overrides})


@pytest.fixture
def created(deployed) -> str:
    """Alice's mined createTask(SPEC, 2 rounds, 5 %) with REWARD wei, on anvil."""
    return dev_send(create_call(), ALICE)


@pytest.mark.django_db
def test_a_matching_transaction_is_confirmed(created):
    # when
    confirmed = confirm(created)
    # then
    receipt = chain.get_receipt(created)
    assert confirmed.tx_hash == created.lower() and not confirmed.replaced
    assert confirmed.sender == Account.from_key(ALICE).address
    assert confirmed.contract_address == chain.deployment_address("TaskRegistry")
    assert confirmed.event["event"] == "TaskCreated" and confirmed.args["taskId"] >= 1
    assert confirmed.fee_wei == receipt["gasUsed"] * receipt["effectiveGasPrice"] > 0

    # and: the same transaction, checked against other expectations, is refused with each reason
    # (one deployment for all cases: each costs five contract deployments on anvil)
    bob = Account.from_key(BOB).address
    cases = [
        ({"sender": bob}, wallet_tx.TxWrongSender, f"not by the task creator's wallet {bob}"),
        ({"event_name": "TaskCancelled"}, wallet_tx.TxEventMissing, "it emitted no TaskCancelled event"),
        (
            {"expected_args": {"specHash": SPEC, "rounds": 3}},
            wallet_tx.TxArgsMismatch,
            "its TaskCreated event has rounds 2, expected 3",
        ),
        ({"expected_args": {"specHash": "0x" + "00" * 32}}, wallet_tx.TxArgsMismatch, "has spec hash 0x"),
    ]
    for overrides, error, message in cases:
        with pytest.raises(error, match=message):
            confirm(created, **overrides)


@pytest.mark.django_db
def test_a_transaction_to_another_address_or_a_reverted_one_is_refused(deployed):
    # given: a plain transfer, not a call of the TaskRegistry
    transfer = dev_send({"to": Account.from_key(BOB).address, "data": "0x", "value": 1}, ALICE)
    # when / then
    with pytest.raises(wallet_tx.TxWrongContract, match="not sent to the TaskRegistry contract"):
        confirm(transfer)

    # given: createTask without a reward, sent with fixed gas so the wallet does not stop it at estimation
    reverted = dev_send({**create_call(value=0), "gas": 200_000}, ALICE)
    # when
    with pytest.raises(wallet_tx.TxReverted, match="TaskRegistryZeroReward") as info:
        confirm(reverted)
    # then
    assert info.value.revert.error_name == "TaskRegistryZeroReward"
    assert "so it cannot register this task" in str(info.value)


@pytest.mark.django_db
def test_a_hash_that_is_not_mined_or_not_a_hash_is_refused(chain_settings):
    with pytest.raises(wallet_tx.TxNotMined, match="not mined yet"):
        confirm("0x" + "ab" * 32)
    with pytest.raises(wallet_tx.TxHashInvalid, match="not a transaction hash"):
        confirm("0x1234")


# --- on the fake chain ----------------------------------------------------------------------------


def test_a_replaced_transaction_is_recognised_by_its_indexed_event(fake_chain):
    # given: the wallet sends createTask, then replaces it ("speed up": same nonce, new hash) before it is mined
    fake_chain.automine = False
    first = dev_send(create_call(), ALICE, wait=False)
    fake_chain.drop(first)
    fake_chain.automine = True
    second = dev_send({**create_call(), "gas": 160_000}, ALICE)
    chain_index_events()
    # when: the page posts the first hash, which will never be mined
    confirmed = confirm(first)
    # then
    assert first != second and chain.get_receipt(first) is None
    assert (
        confirmed.replaced
        and confirmed.tx_hash == second.lower()
        and confirmed.submitted_hash == first.lower()
    )


def test_a_replacement_from_another_wallet_is_not_taken(fake_chain):
    # given: Bob's createTask with the same arguments is indexed, Alice's transaction is never mined
    fake_chain.automine = False
    alices = dev_send(create_call(), ALICE, wait=False)
    fake_chain.drop(alices)
    fake_chain.automine = True
    dev_send(create_call(), BOB)
    chain_index_events()
    # when / then
    with pytest.raises(wallet_tx.TxNotMined):
        confirm(alices, expected_args={"specHash": SPEC, "reward": REWARD, "rounds": 2})


def test_a_pending_transaction_or_an_unreachable_chain_is_not_mined_yet(fake_chain):
    fake_chain.automine = False
    pending = dev_send(create_call(), ALICE, wait=False)
    with pytest.raises(wallet_tx.TxNotMined, match="not mined yet; try again"):
        confirm(pending)
    fake_chain.fail_next("get_receipt")
    with pytest.raises(wallet_tx.TxNotMined, match=r"not mined yet \(or the chain is unreachable\)"):
        confirm(pending)


def test_an_indexed_event_is_only_taken_with_a_receipt_from_the_sender(fake_chain):
    # given: an indexed TaskCreated with the expected arguments (as the indexer stores them: a large reward as a
    # string, the creator checksummed) whose transaction the node does not have
    sender = Account.from_key(ALICE).address
    row = ChainEventFactory(
        args={
            "specHash": SPEC,
            "reward": str(REWARD),
            "rounds": 2,
            "creatorShareBps": 500,
            "creator": sender,
            "taskId": 9,
        }
    )
    lookup = {
        "sender": sender.lower(),
        "contract_name": "TaskRegistry",
        "event_name": "TaskCreated",
        "expected_args": {
            "specHash": SPEC.upper().replace("0X", "0x"),
            "reward": REWARD,
            "creator": sender.lower(),
        },
    }
    # then: the row matches the expected arguments in any spelling, so its receipt is asked for ...
    fake_chain.fail_next("get_receipt", chain.ChainUnavailable(f"asked for {row.tx_hash}"))
    with pytest.raises(chain.ChainUnavailable, match=row.tx_hash):
        wallet_tx.find_replacement(**lookup)
    # ... and without a receipt the index alone is never trusted
    assert wallet_tx.find_replacement(**lookup) is None
    with pytest.raises(wallet_tx.TxNotMined):
        confirm("0x" + "cd" * 32)
