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


def _platform(key: str, contract: str, function: str, args: list) -> ChainTx:
    tx, _ = chain_tx_create(key=key, contract_name=contract, function=function, args=args)
    return chain_tx_process(tx_id=tx.id)


def _events(tx: ChainTx) -> list[tuple[str, str, dict]]:
    return [(e["contract_name"], e["event"], e["args"]) for e in chain.get_receipt(tx.tx_hash)["logs"]]


def test_default_handlers_of_finalization_stakes_and_payouts(fake_chain):
    from bcfl_core.merkle import merkle_proof, merkle_root, stake_leaf_hash

    # given: two tasks of 3 rounds with 1,000 wei rewards, two rounds committed on task 2
    spec = "0x" + keccak(text="s").hex()
    for _ in range(2):
        call = chain.build_call("TaskRegistry", "createTask", [spec, 3, 0], value=1000)
        dev_send({"to": call["to"], "data": call["data"], "value": 1000}, DEV_KEYS[1])
    for rnd in (1, 2):
        _platform(f"c{rnd}", "TaskRegistry", "commitRound", [2, rnd, spec, spec, 1])
    holders, shares = ["0x" + "a1" * 20, "0x" + "b2" * 20], [7000, 3000]
    leaves = [stake_leaf_hash(h, s) for h, s in zip(holders, shares, strict=True)]
    root, proofs = (
        "0x" + merkle_root(leaves).hex(),
        [["0x" + p.hex() for p in merkle_proof(leaves, i)] for i in (0, 1)],
    )
    # when / then: finalize opens the pool with the whole reward; fail pays 2/3 of it
    done = _platform("fin", "TaskRegistry", "finalize", [1, spec, root])
    assert [(c, e) for c, e, _ in _events(done)] == [
        ("TaskRegistry", "TaskFinalized"),
        ("StakeToken", "StakesOpened"),
    ]
    failed = _platform("fail", "TaskRegistry", "fail", [2, root])
    assert _events(failed)[0][2] | {"stakesRoot": None} == {
        "taskId": 2,
        "roundsCommitted": 2,
        "stakesRoot": None,
        "paidToStakes": 666,
        "refunded": 334,
    }
    assert (
        _platform("fin-again", "TaskRegistry", "finalize", [1, spec, root]).error_name
        == "TaskRegistryNotOpen"
    )
    minted = _platform("mint", "ModelNFT", "mint", [holders[0], 1, spec, holders[0], 500])
    assert _events(minted)[0][2]["tokenId"] == 1
    assert _platform("mint2", "ModelNFT", "mint", [holders[0], 2, spec, holders[0], 500]).error_name == (
        "ModelNFTAlreadyMinted"
    )
    # share claims are checked against the root: a retried batch claims nothing, a bad proof reverts
    batch = _platform("b1", "StakeToken", "claimSharesBatch", [1, holders, shares, proofs])
    assert [a["holder"].lower() for _, e, a in _events(batch) if e == "SharesClaimed"] == holders
    assert _events(_platform("b2", "StakeToken", "claimSharesBatch", [1, holders, shares, proofs])) == []
    bad = _platform("b3", "StakeToken", "claimSharesBatch", [2, holders, [7001, 2999], proofs])
    assert bad.error_name == "StakeTokenInvalidProof"
    pushed = _platform("p", "StakeToken", "pushPayouts", [1, holders])
    assert [a["amount"] for _, _, a in _events(pushed)] == [700, 300]
    assert _events(_platform("p2", "StakeToken", "pushPayouts", [1, holders])) == []
