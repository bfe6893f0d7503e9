"""Default handlers of `contracts.fake_chain.FakeChain`: what the platform's calls emit, with the state they need.

State lives on the fake chain: `tasks[id]` = {"creator", "reward" (wei), "rounds", "committed", "status"}
(status "open", "finalized", "failed", "cancelled"; createTask fills it, commitRound counts committed rounds
without emitting anything, as before), `stakes[id]` = {"root", "deposited" (wei), "claimed": {holder: shares},
"withdrawn": {holder: wei}} (opened by finalize/fail) and `nfts[token id]` = model hash. A handler returns the
events [(event, args)] of the called contract or [(contract, event, args)] for another one (TaskRegistry.finalize
also emits StakeToken.StakesOpened). Reverts raise `ChainRevert` with the contract's custom error name.
Share proofs are checked for real against the opened root (`bcfl_core.merkle`); transfers of shares are not
modelled, so pushPayouts pays deposited x claimed shares / 10,000 - withdrawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bcfl_core.merkle import stake_leaf_hash, verify
from contracts.chain.errors import ChainRevert

if TYPE_CHECKING:
    from contracts.fake_chain import FakeCall

TOTAL_SHARES = 10_000
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_ROOT = "0x" + "00" * 32


def _revert(error: str, **args) -> ChainRevert:
    shown = ", ".join(f"{k}={v}" for k, v in args.items())
    return ChainRevert(f"{error}({shown})", error, args)


def _hex(value) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _task(call: FakeCall) -> tuple[int, dict]:
    task_id = int(call.args["taskId"])
    task = call.chain.tasks.get(task_id)
    if task is None:
        raise _revert("TaskRegistryUnknownTask", taskId=task_id)
    return task_id, task


def _open_task(call: FakeCall) -> tuple[int, dict]:
    task_id, task = _task(call)
    if task.get("status", "open") != "open" or task.get("cancelled"):
        raise _revert("TaskRegistryNotOpen", taskId=task_id)
    return task_id, task


def create_task(call: FakeCall) -> list[tuple]:
    task_id = len(call.chain.tasks) + 1
    call.chain.tasks[task_id] = {
        "creator": call.sender,
        "reward": call.value,
        "rounds": int(call.args["rounds"]),
        "committed": 0,
        "status": "open",
        "cancelled": False,
    }
    args = {
        "taskId": task_id,
        "creator": call.sender,
        "specHash": call.args["specHash"],
        "reward": call.value,
        "rounds": call.args["rounds"],
        "creatorShareBps": call.args["creatorShareBps"],
    }
    return [("TaskCreated", args)]


def cancel_task(call: FakeCall) -> list[tuple]:
    task_id, task = _task(call)
    if task["creator"] != call.sender:
        raise _revert("TaskRegistryNotCreator", taskId=task_id, caller=call.sender)
    _open_task(call)
    task["cancelled"], task["status"] = True, "cancelled"
    return [("TaskCancelled", {"taskId": task_id, "creator": call.sender, "refund": task["reward"]})]


def commit_round(call: FakeCall) -> list[tuple]:
    """Counts the task's committed rounds (for `fail`); emits nothing, as the fake chain always did."""
    task = call.chain.tasks.get(int(call.args["taskId"]))
    if task is not None:
        task["committed"] = task.get("committed", 0) + 1
    return []


def _open_stakes(call: FakeCall, task_id: int, root: str, reward: int) -> tuple:
    if task_id in call.chain.stakes:
        raise _revert("StakeTokenAlreadyOpened", id=task_id)
    call.chain.stakes[task_id] = {"root": root, "deposited": reward, "claimed": {}, "withdrawn": {}}
    return ("StakeToken", "StakesOpened", {"id": task_id, "stakesRoot": root, "reward": reward})


def finalize(call: FakeCall) -> list[tuple]:
    root = _hex(call.args["stakesRoot"])
    task_id, task = _open_task(call)
    if root == ZERO_ROOT:
        raise _revert("TaskRegistryZeroStakesRoot", taskId=task_id)
    reward = task["reward"]
    opened = _open_stakes(call, task_id, root, reward)
    task["status"] = "finalized"
    final = {
        "taskId": task_id,
        "finalModelHash": call.args["finalModelHash"],
        "stakesRoot": root,
        "reward": reward,
    }
    return [("TaskFinalized", final), opened]


def fail(call: FakeCall) -> list[tuple]:
    root = _hex(call.args["stakesRoot"])
    task_id, task = _open_task(call)
    k, rounds = task.get("committed", 0), task.get("rounds") or 1
    if k == 0 and root != ZERO_ROOT:
        raise _revert("TaskRegistryUnexpectedStakesRoot", taskId=task_id)
    if k != 0 and root == ZERO_ROOT:
        raise _revert("TaskRegistryZeroStakesRoot", taskId=task_id)
    paid = task["reward"] * k // rounds
    events: list[tuple] = [_open_stakes(call, task_id, root, paid)] if k else []
    task["status"] = "failed"
    args = {"taskId": task_id, "roundsCommitted": k, "stakesRoot": root, "paidToStakes": paid}
    return [("TaskFailed", {**args, "refunded": task["reward"] - paid}), *events]


def mint_nft(call: FakeCall) -> list[tuple]:
    task_id, model_hash = int(call.args["taskId"]), _hex(call.args["modelHash"])
    if model_hash == ZERO_ROOT:
        raise _revert("ModelNFTZeroModelHash")
    if task_id == 0:
        raise _revert("ModelNFTZeroTaskId")
    if task_id in call.chain.nfts or model_hash in call.chain.nfts.values():
        raise _revert("ModelNFTAlreadyMinted", taskId=task_id, modelHash=model_hash)
    call.chain.nfts[task_id] = model_hash
    to = call.args["to"]
    minted = {
        "tokenId": task_id,
        "to": to,
        "modelHash": model_hash,
        "taskId": task_id,
        "royaltyReceiver": call.args["royaltyReceiver"],
        "royaltyBps": call.args["royaltyBps"],
    }
    return [("ModelMinted", minted), ("Transfer", {"from": ZERO_ADDRESS, "to": to, "tokenId": task_id})]


def _pool(call: FakeCall) -> tuple[int, dict]:
    id_ = int(call.args["id"])
    pool = call.chain.stakes.get(id_)
    if pool is None:
        raise _revert("StakeTokenNotOpened", id=id_)
    return id_, pool


def _claim(call: FakeCall, id_: int, pool: dict, holder: str, shares: int, proof: list) -> list[tuple]:
    if not verify([_hex(p) for p in proof], pool["root"], stake_leaf_hash(holder, shares)):
        raise _revert("StakeTokenInvalidProof", id=id_, holder=holder, shares=shares)
    pool["claimed"][holder] = shares
    single = {"operator": call.sender, "from": ZERO_ADDRESS, "to": holder, "id": id_, "value": shares}
    return [("SharesClaimed", {"id": id_, "holder": holder, "shares": shares}), ("TransferSingle", single)]


def claim_shares(call: FakeCall) -> list[tuple]:
    id_, pool = _pool(call)
    holder = call.args["holder"]
    if holder in pool["claimed"]:
        raise _revert("StakeTokenSharesAlreadyClaimed", id=id_, holder=holder)
    return _claim(call, id_, pool, holder, int(call.args["shares"]), call.args["proof"])


def claim_shares_batch(call: FakeCall) -> list[tuple]:
    """Skips holders already claimed (a retried batch is harmless); a bad proof reverts the whole batch."""
    holders, shares, proofs = call.args["holders"], call.args["shares"], call.args["proofs"]
    if not len(holders) == len(shares) == len(proofs):
        raise _revert(
            "StakeTokenLengthMismatch", holders=len(holders), shares=len(shares), proofs=len(proofs)
        )
    id_, pool = _pool(call)
    claimed_before = dict(pool["claimed"])
    events: list[tuple] = []
    try:
        for holder, amount, proof in zip(holders, shares, proofs, strict=True):
            if holder not in pool["claimed"]:
                events += _claim(call, id_, pool, holder, int(amount), proof)
    except ChainRevert:
        pool["claimed"] = claimed_before
        raise
    return events


def deposit_revenue(call: FakeCall) -> list[tuple]:
    if call.value == 0:
        raise _revert("StakeTokenZeroValue")
    id_, pool = _pool(call)
    pool["deposited"] += call.value
    return [("RevenueDeposited", {"id": id_, "from": call.sender, "amount": call.value})]


def push_payouts(call: FakeCall) -> list[tuple]:
    id_, pool = _pool(call)
    events: list[tuple] = []
    for holder in call.args["holders"]:
        accumulated = pool["deposited"] * pool["claimed"].get(holder, 0) // TOTAL_SHARES
        due = accumulated - pool["withdrawn"].get(holder, 0)
        if due > 0:
            pool["withdrawn"][holder] = accumulated
            events.append(("PayoutPushed", {"id": id_, "account": holder, "amount": due}))
    return events


DEFAULT_HANDLERS = {
    ("TaskRegistry", "createTask"): create_task,
    ("TaskRegistry", "cancel"): cancel_task,
    ("TaskRegistry", "commitRound"): commit_round,
    ("TaskRegistry", "finalize"): finalize,
    ("TaskRegistry", "fail"): fail,
    ("ModelNFT", "mint"): mint_nft,
    ("StakeToken", "claimShares"): claim_shares,
    ("StakeToken", "claimSharesBatch"): claim_shares_batch,
    ("StakeToken", "depositRevenue"): deposit_revenue,
    ("StakeToken", "pushPayouts"): push_payouts,
}
