"""Gas budgets (ARCHITECTURE.md section 4): createTask <= 200k, commitRound <= 100k and independent of the
number of updates, depositRevenue O(1) in the number of holders, claim <= 80k."""

from __future__ import annotations

from eth_utils import keccak, to_checksum_address

from bcfl_core.merkle import leaf_hash, merkle_root
from tests.contracts.solidity.helpers import ETH


def calldata_gas(env, receipt) -> int:
    data = bytes(env.w3.eth.get_transaction(receipt["transactionHash"])["input"])
    return sum(4 if b == 0 else 16 for b in data)


def root_over(n: int) -> bytes:
    return merkle_root(
        [leaf_hash(f"0x{i + 1:040x}", keccak(text=f"update-{i}"), 500_000 + i, True) for i in range(n)]
    )


def test_create_task_gas(env, accounts):
    receipt = env.send(env.task.functions.createTask(keccak(text="spec"), 10, 1500), accounts[1], value=ETH)
    assert receipt["gasUsed"] <= 200_000
    receipt = env.send(env.task.functions.createTask(keccak(text="spec2"), 10, 1500), accounts[1], value=ETH)
    assert receipt["gasUsed"] <= 200_000


def test_commit_round_gas_is_independent_of_participants(env):
    t1, t10k = env.create_task(rounds=2), env.create_task(rounds=2)
    root1, root10k = root_over(1), root_over(10_000)
    r1 = env.send(env.task.functions.commitRound(t1, 1, keccak(text="g"), root1, 1))
    r10k = env.send(env.task.functions.commitRound(t10k, 1, keccak(text="g"), root10k, 10_000))
    assert r1["gasUsed"] <= 100_000 and r10k["gasUsed"] <= 100_000
    # execution gas is identical; the tx total differs only through calldata pricing (4 gas per zero byte,
    # 16 per non-zero byte), i.e. only if the two 32-byte roots contain different numbers of zero bytes
    assert r1["gasUsed"] - calldata_gas(env, r1) == r10k["gasUsed"] - calldata_gas(env, r10k)
    if root1.count(0) == root10k.count(0):
        assert r1["gasUsed"] == r10k["gasUsed"]
    # later rounds are cheaper (the hash-chain slot is already non-zero)
    r2 = env.send(env.task.functions.commitRound(t1, 2, keccak(text="g"), root10k, 10_000))
    assert r2["gasUsed"] <= r1["gasUsed"]


def test_deposit_revenue_gas_is_independent_of_holders(env, accounts):
    many = [to_checksum_address(f"0x{0xB000 + i:040x}") for i in range(100)]
    env.mint_shares(1, [accounts[1]], [10_000])
    env.mint_shares(2, many, [100] * 100)
    for _ in range(2):  # first deposit (fresh slots) and a later one
        g1 = env.send(env.stake.functions.depositRevenue(1), accounts[5], value=ETH)["gasUsed"]
        g100 = env.send(env.stake.functions.depositRevenue(2), accounts[5], value=ETH)["gasUsed"]
        assert g1 == g100


def test_claim_gas(env, accounts):
    env.mint_shares(1, [accounts[1], accounts[2]], [5000, 5000])
    env.send(env.stake.functions.depositRevenue(1), accounts[5], value=ETH)
    env.send(env.stake.functions.safeTransferFrom(accounts[2], accounts[3], 1, 2500, b""), accounts[2])
    for who in accounts[1:4]:
        assert env.send(env.stake.functions.claim(1), who)["gasUsed"] <= 80_000
