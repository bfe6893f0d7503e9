"""The fake chain (contracts/fake_chain.py) behaves like the gateway for the ledger and the indexer, and fails
on demand the way a real node fails."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from contracts import chain
from contracts.chain import ETH_TRANSFER, ChainRejected, ChainUnavailable
from contracts.devwallet import dev_send
from contracts.indexer import chain_index_events
from contracts.models import ChainEvent, ChainTx
from contracts.services import chain_tx_create, chain_tx_process
from tests.anvil import DEV_KEYS

RECIPIENT = "0x" + "42" * 20


def transfer(key: str = "t-1") -> ChainTx:
    tx, _ = chain_tx_create(key=key, contract_name="", function=ETH_TRANSFER, args=[RECIPIENT], value_wei=5)
    return tx


def test_a_ledger_transaction_is_signed_sent_and_confirmed(fake_chain):
    # when
    tx = chain_tx_process(tx_id=transfer().id)
    # then
    assert tx.status == ChainTx.Status.CONFIRMED and tx.nonce == 0 and tx.gas_used == 21_000
    assert fake_chain.receipts[tx.tx_hash]["to"].lower() == RECIPIENT
    assert chain.block_number() == tx.block_number == 1


def test_a_broadcast_that_fails_on_demand_is_retried_with_the_same_signed_transaction(fake_chain):
    # given
    fake_chain.fail_next("broadcast")
    tx = transfer()
    # when
    with pytest.raises(ChainUnavailable, match="failed on demand"):
        chain_tx_process(tx_id=tx.id)
    signed = ChainTx.objects.get(pk=tx.pk)
    done = chain_tx_process(tx_id=tx.id)
    # then
    assert signed.status == ChainTx.Status.SIGNED
    assert done.status == ChainTx.Status.CONFIRMED and (done.tx_hash, done.nonce) == (signed.tx_hash, 0)


def test_a_revert_on_demand_fails_the_row_with_the_decoded_error(fake_chain):
    # given
    fake_chain.revert_next("IdentityRegistryNotBanned", identity="0x" + "11" * 32)
    # when
    tx = chain_tx_process(tx_id=transfer().id)
    # then
    assert tx.status == ChainTx.Status.FAILED and tx.error_name == "IdentityRegistryNotBanned"
    assert "0x" + "11" * 32 in tx.error and chain.get_receipt(tx.tx_hash)["status"] == 0


def test_a_refused_broadcast_releases_the_nonce(fake_chain):
    fake_chain.fail_next("broadcast", ChainRejected("insufficient funds for gas * price + value"))
    tx = chain_tx_process(tx_id=transfer().id)
    assert tx.status == ChainTx.Status.FAILED and tx.error_name == "Rejected" and tx.nonce is None
    assert chain_tx_process(tx_id=transfer("t-2").id).nonce == 0


def test_a_chain_that_is_down_is_unavailable_and_reported(fake_chain):
    # given
    fake_chain.down = True
    # then
    with pytest.raises(ChainUnavailable):
        chain.block_number()
    with pytest.raises(ChainUnavailable):
        chain_tx_process(tx_id=transfer().id)
    status = chain.chain_status()
    assert status["connected"] is False and status["error"]
    assert ChainTx.objects.get().status == ChainTx.Status.QUEUED


def test_pending_transactions_wait_for_mine(fake_chain):
    fake_chain.automine = False
    tx_hash = dev_send({"to": RECIPIENT, "value": 1}, DEV_KEYS[1], wait=False)
    assert chain.get_receipt(tx_hash) is None and chain.transaction_known(tx_hash)
    with pytest.raises(ChainUnavailable, match="not mined"):
        chain.wait_for_receipt(tx_hash)
    assert fake_chain.mine() == [tx_hash.lower()]
    assert chain.wait_for_receipt(tx_hash)["status"] == 1


def test_calls_emit_events_that_the_indexer_stores(fake_chain):
    # given: a creator's createTask (default handler) and a platform commitRound (a handler set by the test)
    fake_chain.on(
        "TaskRegistry", "commitRound", lambda call: [("RoundCommitted", {"taskId": call.args["taskId"]})]
    )
    spec = "0x" + keccak(text="s").hex()
    call = chain.build_call("TaskRegistry", "createTask", [spec, 2, 500], value=7)
    dev_send({"to": call["to"], "data": call["data"], "value": 7}, DEV_KEYS[1])
    commit, _ = chain_tx_create(
        key="commit", contract_name="TaskRegistry", function="commitRound", args=[1, 1, spec, spec, 3]
    )
    chain_tx_process(tx_id=commit.id)
    # when
    result = chain_index_events()
    # then
    created, committed = ChainEvent.objects.order_by("block_number")
    assert result["events"] == 2 and (created.event, committed.event) == ("TaskCreated", "RoundCommitted")
    assert created.args == {
        "taskId": 1,
        "creator": chain.get_receipt(created.tx_hash)["from"],
        "specHash": spec,
        "reward": 7,
        "rounds": 2,
        "creatorShareBps": 500,
    }
    assert committed.args == {"taskId": 1} and fake_chain.tasks[1]["reward"] == 7


def test_unknown_operations_and_unscripted_reads_are_refused(fake_chain):
    with pytest.raises(ValueError, match="not a faked gateway function"):
        fake_chain.fail_next("send_everything")
    with pytest.raises(chain.ChainError, match="no scripted read"):
        chain.call("TaskRegistry", "getTask", [1])
    fake_chain.reads[("TaskRegistry", "getTask")] = lambda task_id: ("0xcreator", task_id)
    assert chain.call("TaskRegistry", "getTask", [1]) == ("0xcreator", 1)
