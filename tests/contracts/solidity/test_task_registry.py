from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from bcfl_core.merkle import leaf_hash, merkle_proof, merkle_root
from tests.contracts.solidity.helpers import ETH, StakeTree, reverts, role

OPEN, FINALIZED, CANCELLED, FAILED = 1, 2, 3, 4
ZERO = b"\x00" * 32
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
    assert t == (creator, 2 * ETH, 3, 0, 2500, OPEN, H[5], ZERO)
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


def test_commit_rounds_in_order_one_hash_per_round(env):
    task_id = env.create_task(rounds=3)
    for rnd in (1, 2, 3):
        root = merkle_root(updates(5, seed=str(rnd)))
        receipt = env.send(env.task.functions.commitRound(task_id, rnd, H[rnd], root, 4))
        (ev,) = env.event(env.task, "RoundCommitted", receipt)
        assert dict(ev["args"]) == {
            "taskId": task_id,
            "round": rnd,
            "globalModelHash": H[rnd],
            "updatesRoot": root,
            "acceptedCount": 4,
        }
        fields = keccak(encode(["bytes32", "bytes32", "uint32"], [H[rnd], root, 4]))
        assert env.task.functions.roundFieldsHash(H[rnd], root, 4).call() == fields
        assert env.task.functions.roundHash(task_id, rnd).call() == fields
    assert env.task.functions.roundHash(task_id, 4).call() == b"\x00" * 32
    assert env.task.functions.getTask(task_id).call()[3] == 3


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


def test_only_platform_commits_finalizes_and_fails(env, accounts):
    task_id = env.create_task(rounds=1)
    outsider = accounts[3]
    with reverts("AccessControlUnauthorizedAccount", outsider, role("PLATFORM_ROLE")):
        env.task.functions.commitRound(task_id, 1, H[0], H[1], 1).transact({"from": outsider})
    commit(env, task_id, 1)
    with reverts("AccessControlUnauthorizedAccount", outsider, role("PLATFORM_ROLE")):
        env.task.functions.finalize(task_id, H[2], H[3]).transact({"from": outsider})
    with reverts("AccessControlUnauthorizedAccount", outsider, role("PLATFORM_ROLE")):
        env.task.functions.fail(task_id, H[3]).transact({"from": outsider})
    # the admin can delegate the role
    env.send(env.task.functions.grantRole(role("PLATFORM_ROLE"), outsider))
    env.send(env.task.functions.finalize(task_id, H[2], H[3]), outsider)


def test_verify_update_inclusion(env, accounts):
    task_id = env.create_task(rounds=1)
    participants = accounts[1:6]
    rows = [(p, keccak(text=p), 900_000 + i, i != 2) for i, p in enumerate(participants)]
    leaves = [leaf_hash(*row) for row in rows]
    assert env.task.functions.updateLeaf(*rows[0]).call() == leaves[0]
    root = merkle_root(leaves)
    fields = (H[0], root, 4)
    verify = env.task.functions.verifyUpdate
    assert verify(task_id, 1, *fields, *rows[0], merkle_proof(leaves, 0)).call() is False  # not committed
    commit(env, task_id, 1, root=root, accepted=4)
    for i, row in enumerate(rows):
        assert verify(task_id, 1, *fields, *row, merkle_proof(leaves, i)).call()
    forged = (rows[2][0], rows[2][1], rows[2][2], True)  # flip "accepted"
    assert not verify(task_id, 1, *fields, *forged, merkle_proof(leaves, 2)).call()
    # the round's other fields are bound too: a different accepted count or model hash fails
    assert not verify(task_id, 1, H[0], root, 5, *rows[0], merkle_proof(leaves, 0)).call()
    assert not verify(task_id, 1, H[1], root, 4, *rows[0], merkle_proof(leaves, 0)).call()


def test_finalize_moves_reward_into_stake_pool(env, accounts):
    task_id = env.create_task(creator=accounts[1], reward=3 * ETH, rounds=2)
    tree = StakeTree([accounts[4], accounts[5]], [9000, 1000])
    with reverts("TaskRegistryRoundsIncomplete", task_id, 0, 2):
        env.task.functions.finalize(task_id, H[9], tree.root).transact({"from": env.platform})
    commit(env, task_id, 1)
    commit(env, task_id, 2)
    with reverts("TaskRegistryZeroStakesRoot", task_id):
        env.task.functions.finalize(task_id, H[9], ZERO).transact({"from": env.platform})
    receipt = env.send(env.task.functions.finalize(task_id, H[9], tree.root))
    assert env.balance(env.task.address) == 0 and env.balance(env.stake.address) == 3 * ETH
    (ev,) = env.event(env.task, "TaskFinalized", receipt)
    assert dict(ev["args"]) == {
        "taskId": task_id,
        "finalModelHash": H[9],
        "stakesRoot": tree.root,
        "reward": 3 * ETH,
    }
    (opened,) = env.event(env.stake, "StakesOpened", receipt)
    assert dict(opened["args"]) == {"id": task_id, "stakesRoot": tree.root, "reward": 3 * ETH}
    assert env.stake.functions.totalDeposited(task_id).call() == 3 * ETH
    env.claim_all(task_id, tree)
    assert env.stake.functions.claimable(task_id, accounts[4]).call() == 27 * ETH // 10
    t = env.task.functions.getTask(task_id).call()
    assert t[1] == 0 and t[5] == FINALIZED and t[7] == H[9]
    for fn in (env.task.functions.finalize(task_id, H[9], tree.root), env.task.functions.fail(task_id, H[1])):
        with reverts("TaskRegistryNotOpen", task_id, FINALIZED):
            fn.transact({"from": env.platform})
    with reverts("TaskRegistryNotOpen", task_id, FINALIZED):
        env.task.functions.commitRound(task_id, 3, H[0], H[1], 1).transact({"from": env.platform})
    with reverts("TaskRegistryNotOpen", task_id, FINALIZED):
        env.task.functions.cancel(task_id).transact({"from": accounts[1]})


def test_finalize_reverts_if_stakes_already_opened(env):
    """The stake id is the task id: a pool opened for it by another STAKES_ROLE holder blocks nothing else."""
    task_id = env.create_task(rounds=1)
    commit(env, task_id, 1)
    env.open_stakes(task_id, StakeTree([env.platform], [10_000]))
    with reverts("StakeTokenAlreadyOpened", task_id):
        env.task.functions.finalize(task_id, H[9], H[1]).transact({"from": env.platform})
    assert env.task.functions.getTask(task_id).call()[5] == OPEN


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_fail_pays_committed_rounds_pro_rata_and_refunds_the_rest(env, accounts, k):
    creator = accounts[2]
    reward = 10 * ETH + 1
    task_id = env.create_task(creator=creator, reward=reward, rounds=3)
    env.commit_all(task_id, k)
    tree = StakeTree([accounts[4]], [10_000])
    root = tree.root if k else ZERO
    wrong = "TaskRegistryZeroStakesRoot" if k else "TaskRegistryUnexpectedStakesRoot"
    with reverts(wrong, task_id):
        env.task.functions.fail(task_id, ZERO if k else tree.root).transact({"from": env.platform})
    before = env.balance(creator)
    receipt = env.send(env.task.functions.fail(task_id, root))
    paid = reward * k // 3
    (ev,) = env.event(env.task, "TaskFailed", receipt)
    assert dict(ev["args"]) == {
        "taskId": task_id,
        "roundsCommitted": k,
        "stakesRoot": root,
        "paidToStakes": paid,
        "refunded": reward - paid,
    }
    assert env.balance(creator) - before == reward - paid  # pushed
    assert env.stake.functions.totalDeposited(task_id).call() == paid
    assert env.stake.functions.stakesRoot(task_id).call() == root
    assert env.balance(env.task.address) == 0
    assert env.task.functions.getTask(task_id).call()[5] == FAILED
    with reverts("TaskRegistryNotOpen", task_id, FAILED):
        env.task.functions.fail(task_id, root).transact({"from": env.platform})


def test_fail_credits_refund_a_creator_cannot_receive(env, accounts):
    bad = env.deploy("RevertingReceiver")
    burner = env.deploy("GasBurner")
    for creator in (bad, burner):  # contracts as creators (anvil impersonation sends their createTask)
        env.w3.provider.make_request("anvil_impersonateAccount", [creator.address])
        env.w3.provider.make_request("anvil_setBalance", [creator.address, hex(ETH)])
        receipt = env.send(env.task.functions.createTask(H[0], 2, 0), creator.address, value=ETH // 2)
        task_id = env.event(env.task, "TaskCreated", receipt)[0]["args"]["taskId"]
        env.w3.provider.make_request("anvil_stopImpersonatingAccount", [creator.address])
        env.commit_all(task_id, 1)
        receipt = env.send(env.task.functions.fail(task_id, H[1]))
        (credited,) = env.event(env.task, "RefundCredited", receipt)
        assert dict(credited["args"]) == {"creator": creator.address, "amount": ETH // 4}
        assert env.task.functions.refundOf(creator.address).call() == ETH // 4
    with reverts("TaskRegistryNothingToWithdraw", accounts[3]):
        env.task.functions.withdrawRefund().transact({"from": accounts[3]})
    env.send(bad.functions.setAccept(True))
    env.w3.provider.make_request("anvil_impersonateAccount", [bad.address])
    before = env.balance(bad.address)
    receipt = env.send(env.task.functions.withdrawRefund(), bad.address, gas=200_000)
    env.w3.provider.make_request("anvil_stopImpersonatingAccount", [bad.address])
    assert dict(env.event(env.task, "RefundWithdrawn", receipt)[0]["args"]) == {
        "creator": bad.address,
        "amount": ETH // 4,
    }
    assert env.balance(bad.address) - before + env.fee(receipt) == ETH // 4
    assert env.task.functions.refundOf(bad.address).call() == 0
    assert env.balance(env.task.address) == ETH // 4  # the burner's credit


def _end_state(env, task_id, rounds, end, creator):
    """Drive a task to `end` ("completed", "cancelled" or ("failed", k)); returns the wei refunded."""
    tree = StakeTree([env.accounts[4], env.accounts[5]], [6001, 3999])
    if end == "cancelled":
        receipt = env.send(env.task.functions.cancel(task_id), creator)
        return env.event(env.task, "TaskCancelled", receipt)[0]["args"]["refund"]
    if end == "completed":
        env.commit_all(task_id, rounds)
        env.send(env.task.functions.finalize(task_id, H[9], tree.root))
        return 0
    k = end[1]
    env.commit_all(task_id, k)
    receipt = env.send(env.task.functions.fail(task_id, tree.root if k else ZERO))
    return env.event(env.task, "TaskFailed", receipt)[0]["args"]["refunded"]


def test_escrow_invariant_over_every_end_state(env, accounts):
    """For every end state: escrow in = paid to the stake pool + refunded, to the wei (odd rewards, floors)."""
    rounds = 5
    ends = ["completed", "cancelled", *[("failed", k) for k in range(rounds + 1)]]
    for i, end in enumerate(ends):
        creator = accounts[1 + i % 3]
        reward = 7 * ETH + 12_345 + i  # not divisible by `rounds`
        task_id = env.create_task(creator=creator, reward=reward, rounds=rounds)
        refunded = _end_state(env, task_id, rounds, end, creator)
        paid = env.stake.functions.totalDeposited(task_id).call()
        assert paid + refunded == reward, end
        expected_paid = (
            reward if end == "completed" else 0 if end == "cancelled" else reward * end[1] // rounds
        )
        assert paid == expected_paid, end
        assert env.balance(env.task.address) == 0, end
    assert env.balance(env.stake.address) == sum(
        env.stake.functions.totalDeposited(t).call() for t in range(1, 9)
    )


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
