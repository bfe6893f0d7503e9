"""Property tests: StakeToken's dividend accounting conserves value under any mix of mints, deposits,
transfers and claims (hypothesis; each example runs on a fresh anvil snapshot)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contracts.solidity.helpers import ETH

TOTAL = 10_000
IDS = (1, 2)
N_HOLDERS = 4

split = st.lists(st.integers(0, TOTAL), min_size=N_HOLDERS - 1, max_size=N_HOLDERS - 1).map(
    lambda cuts: [b - a for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), TOTAL], strict=True)]
)
op = st.one_of(
    st.tuples(st.just("mint"), st.sampled_from(IDS), split),
    st.tuples(
        st.just("deposit"), st.sampled_from(IDS), st.one_of(st.integers(1, 10_000), st.integers(1, 50 * ETH))
    ),
    st.tuples(
        st.just("transfer"), st.sampled_from(IDS), st.integers(0, 3), st.integers(0, 3), st.integers(0, TOTAL)
    ),
    st.tuples(st.just("claim"), st.sampled_from(IDS), st.integers(0, 3)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=14))
def test_claimed_plus_claimable_equals_deposited(anvil, env, ops):
    snap = anvil.snapshot()
    try:
        _run(env, ops)
    finally:
        assert anvil.revert(snap)


def _run(env, ops):
    stake = env.stake.functions
    holders = env.accounts[1 : 1 + N_HOLDERS]
    payer = env.accounts[6]
    minted: set[int] = set()
    deposited = dict.fromkeys(IDS, 0)
    claimed = dict.fromkeys(IDS, 0)
    start_balance = env.balance(env.stake.address)

    for kind, token_id, *args in ops:
        if kind == "mint":
            if token_id in minted:
                continue
            pairs = [(h, a) for h, a in zip(holders, args[0], strict=True) if a]
            env.send(stake.mintShares(token_id, [h for h, _ in pairs], [a for _, a in pairs]), fast=True)
            minted.add(token_id)
        elif kind == "deposit":
            if token_id not in minted:
                continue
            env.send(stake.depositRevenue(token_id), payer, value=args[0], fast=True)
            deposited[token_id] += args[0]
        elif kind == "transfer":
            src, dst = holders[args[0]], holders[args[1]]
            amount = min(args[2], stake.balanceOf(src, token_id).call())
            env.send(stake.safeTransferFrom(src, dst, token_id, amount, b""), src, fast=True)
        else:
            who = holders[args[0]]
            due = stake.claimable(token_id, who).call()
            receipt = env.send(stake.claim(token_id), who, fast=True)
            paid = sum(e["args"]["amount"] for e in env.event(env.stake, "DividendClaimed", receipt))
            assert paid == due
            claimed[token_id] += paid
            # claiming again right away pays nothing
            assert stake.claimable(token_id, who).call() == 0
            receipt = env.send(stake.claim(token_id), who, fast=True)
            assert env.event(env.stake, "DividendClaimed", receipt) == []

    for token_id in IDS:
        withdrawn = sum(stake.withdrawn(token_id, h).call() for h in holders)
        claimable = sum(stake.claimable(token_id, h).call() for h in holders)
        assert withdrawn == claimed[token_id]
        assert stake.totalDeposited(token_id).call() == deposited[token_id]
        # floor division leaves at most 1 wei of dust per holder, never more than was deposited
        assert deposited[token_id] - N_HOLDERS <= withdrawn + claimable <= deposited[token_id]
        assert sum(stake.balanceOf(h, token_id).call() for h in holders) == (
            TOTAL if token_id in minted else 0
        )
    paid_out = sum(claimed.values())
    assert env.balance(env.stake.address) == start_balance + sum(deposited.values()) - paid_out
