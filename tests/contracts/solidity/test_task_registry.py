from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from bcfl_core.merkle import leaf_hash, merkle_proof, merkle_root
from tests.contracts.solidity.helpers import ETH, reverts, role

OPEN, FINALIZED, CANCELLED = 1, 2, 3
H = [keccak(text=f"h{i}") for i in range(10)]


def updates(n: int, seed: str = "u") -> list[bytes]:
    return [leaf_hash(f"0x{i + 1:040x}", keccak(text=f"{seed}{i}"), 1000 + i, i % 3 != 0) for i in range(n)]


def commit(env, task_id, round_, root=H[1], accepted=1, sender=None):
    return env.send(env.task.functions.commitRound(task_id, round_, H[0], root, accepted), sender)


def test_create_task_escrows_reward_and_emits(env, accounts):
    creator = accounts[1]
    receipt = env.send(env.task.functions.createTask(H[5], 3, 2500), creator, value=2 * ETH)
    (ev,) = env.event(env.task, "TaskCreated", receipt)
    assert dict(ev["args"]) == {
        "taskId": 1,
        "creator": creator,
        "specHash": H[5],
        "reward": 2 * ETH,
        "rounds": 3,
        "creatorShareBps": 2500,
    }
    assert env.balance(env.task.address) == 2 * ETH
    assert env.task.functions.taskCount().call() == 1
    t = env.task.functions.getTask(1).call()
    assert t == (creator, 2 * ETH, 3, 0, 2500, OPEN, H[5], b"\x00" * 32, b"\x00" * 32)
    assert env.create_task() == 2


def test_create_task_rejects_bad_input(env, accounts):
    fn = env.task.functions
    with reverts("TaskRegistryZeroReward"):
        fn.createTask(H[0], 3, 0).transact({"from": accounts[1], "value": 0})
    with reverts("TaskRegistryZeroRounds"):
        fn.createTask(H[0], 0, 0).transact({"from": accounts[1], "value": 1})
    with reverts("TaskRegistryInvalidShare", 10_001):
        fn.createTask(H[0], 1, 10_001).transact({"from": accounts[1], "value": 1})
    env.send(fn.createTask(H[0], 1, 10_000), accounts[1], value=1)  # 100 % is allowed
    with reverts("TaskRegistryUnknownTask", 7):
        fn.getTask(7).call()


def test_commit_rounds_in_order_with_hash_chain(env):
    task_id = env.create_task(rounds=3)
    digest = b"\x00" * 32
    for rnd in (1, 2, 3):
        root = merkle_root(updates(5, seed=str(rnd)))
        receipt = env.send(env.task.functions.commitRound(task_id, rnd, H[rnd], root, 4))
        digest = keccak(
            encode(["bytes32", "uint32", "bytes32", "bytes32", "uint32"], [digest, rnd, H[rnd], root, 4])
        )
        (ev,) = env.event(env.task, "RoundCommitted", receipt)
        assert dict(ev["args"]) == {
            "taskId": task_id,
            "round": rnd,
            "globalModelHash": H[rnd],
            "updatesRoot": root,
            "acceptedCount": 4,
            "roundsDigest": digest,
        }
        assert env.task.functions.roundRoot(task_id, rnd).call() == root
    t = env.task.functions.getTask(task_id).call()
    assert t[3] == 3 and t[7] == digest


@pytest.mark.parametrize("bad_round", [0, 2, 5])
def test_commit_round_out_of_order(env, bad_round):
    task_id = env.create_task(rounds=3)
    with reverts("TaskRegistryUnexpectedRound", task_id, 1, bad_round):
        env.task.functions.commitRound(task_id, bad_round, H[0], H[1], 1).transact({"from": env.platform})


def test_commit_round_exactly_once_and_not_beyond_rounds(env):
    task_id = env.create_task(rounds=2)
    commit(env, task_id, 1)
    with reverts("TaskRegistryUnexpectedRound", task_id, 2, 1):
        env.task.functions.commitRound(task_id, 1, H[0], H[1], 1).transact({"from": env.platform})
    commit(env, task_id, 2)
    with reverts("TaskRegistryUnexpectedRound", task_id, 3, 3):
        env.task.functions.commitRound(task_id, 3, H[0], H[1], 1).transact({"from": env.platform})
    with reverts("TaskRegistryUnknownTask", 99):
        env.task.functions.commitRound(99, 1, H[0], H[1], 1).transact({"from": env.platform})


def test_only_platform_commits_and_finalizes(env, accounts):
    task_id = env.create_task(rounds=1)
    outsider = accounts[3]
    with reverts("AccessControlUnauthorizedAccount", outsider, role("PLATFORM_ROLE")):
        env.task.functions.commitRound(task_id, 1, H[0], H[1], 1).transact({"from": outsider})
    commit(env, task_id, 1)
    with reverts("AccessControlUnauthorizedAccount", outsider, role("PLATFORM_ROLE")):
        env.task.functions.finalize(task_id, H[2], outsider).transact({"from": outsider})
    # the admin can delegate the role
    env.send(env.task.functions.grantRole(role("PLATFORM_ROLE"), outsider))
    env.send(env.task.functions.finalize(task_id, H[2], outsider), outsider)


def test_verify_update_inclusion(env, accounts):
    task_id = env.create_task(rounds=1)
    participants = accounts[1:6]
    rows = [(p, keccak(text=p), 900_000 + i, i != 2) for i, p in enumerate(participants)]
    leaves = [leaf_hash(*row) for row in rows]
    assert env.task.functions.updateLeaf(*rows[0]).call() == leaves[0]
    root = merkle_root(leaves)
    assert env.task.functions.verifyUpdate(task_id, 1, *rows[0], merkle_proof(leaves, 0)).call() is False
    commit(env, task_id, 1, root=root, accepted=4)
    for i, row in enumerate(rows):
        assert env.task.functions.verifyUpdate(task_id, 1, *row, merkle_proof(leaves, i)).call()
    forged = (rows[2][0], rows[2][1], rows[2][2], True)  # flip "accepted"
    assert not env.task.functions.verifyUpdate(task_id, 1, *forged, merkle_proof(leaves, 2)).call()


def test_finalize_releases_reward(env, accounts):
    task_id = env.create_task(creator=accounts[1], reward=3 * ETH, rounds=2)
    receiver = accounts[7]
    with reverts("TaskRegistryRoundsIncomplete", task_id, 0, 2):
        env.task.functions.finalize(task_id, H[9], receiver).transact({"from": env.platform})
    commit(env, task_id, 1)
    commit(env, task_id, 2)
    with reverts("TaskRegistryZeroAddress"):
        env.task.functions.finalize(task_id, H[9], "0x" + "00" * 20).transact({"from": env.platform})
    before = env.balance(receiver)
    receipt = env.send(env.task.functions.finalize(task_id, H[9], receiver))
    assert env.balance(receiver) - before == 3 * ETH
    assert env.balance(env.task.address) == 0
    (ev,) = env.event(env.task, "TaskFinalized", receipt)
    assert dict(ev["args"]) == {
        "taskId": task_id,
        "finalModelHash": H[9],
        "rewardReceiver": receiver,
        "reward": 3 * ETH,
    }
    t = env.task.functions.getTask(task_id).call()
    assert t[1] == 0 and t[5] == FINALIZED and t[8] == H[9]
    with reverts("TaskRegistryNotOpen", task_id, FINALIZED):
        env.task.functions.finalize(task_id, H[9], receiver).transact({"from": env.platform})
    with reverts("TaskRegistryNotOpen", task_id, FINALIZED):
        env.task.functions.commitRound(task_id, 3, H[0], H[1], 1).transact({"from": env.platform})
    with reverts("TaskRegistryNotOpen", task_id, FINALIZED):
        env.task.functions.cancel(task_id).transact({"from": accounts[1]})


def test_finalize_to_stake_pool_books_unallocated_revenue(env, accounts):
    task_id = env.create_task(reward=ETH, rounds=1)
    commit(env, task_id, 1)
    receipt = env.send(env.task.functions.finalize(task_id, H[9], env.stake.address))
    (ev,) = env.event(env.stake, "RevenueReceived", receipt)
    assert ev["args"]["from"] == env.task.address and ev["args"]["amount"] == ETH
    assert env.stake.functions.unallocatedRevenue().call() == ETH


def test_finalize_to_reverting_receiver_keeps_escrow(env):
    bad = env.deploy("RevertingReceiver")
    task_id = env.create_task(reward=ETH, rounds=1)
    commit(env, task_id, 1)
    with reverts("RevertingReceiverRejected"):
        env.task.functions.finalize(task_id, H[9], bad.address).transact({"from": env.platform})
    assert env.balance(env.task.address) == ETH
    assert env.task.functions.getTask(task_id).call()[5] == OPEN


def test_cancel_refunds_creator(env, accounts):
    creator = accounts[2]
    task_id = env.create_task(creator=creator, reward=5 * ETH)
    with reverts("TaskRegistryNotCreator", task_id, accounts[3]):
        env.task.functions.cancel(task_id).transact({"from": accounts[3]})
    before = env.balance(creator)
    receipt = env.send(env.task.functions.cancel(task_id), creator)
    assert env.balance(creator) - before + env.fee(receipt) == 5 * ETH
    (ev,) = env.event(env.task, "TaskCancelled", receipt)
    assert dict(ev["args"]) == {"taskId": task_id, "creator": creator, "refund": 5 * ETH}
    assert env.task.functions.getTask(task_id).call()[5] == CANCELLED
    with reverts("TaskRegistryNotOpen", task_id, CANCELLED):
        env.task.functions.cancel(task_id).transact({"from": creator})
    with reverts("TaskRegistryNotOpen", task_id, CANCELLED):
        env.task.functions.commitRound(task_id, 1, H[0], H[1], 1).transact({"from": env.platform})


def test_cannot_cancel_after_first_round(env, accounts):
    task_id = env.create_task(creator=accounts[2])
    commit(env, task_id, 1)
    with reverts("TaskRegistryAlreadyStarted", task_id, 1):
        env.task.functions.cancel(task_id).transact({"from": accounts[2]})
    with reverts("TaskRegistryUnknownTask", 42):
        env.task.functions.cancel(42).transact({"from": accounts[2]})
