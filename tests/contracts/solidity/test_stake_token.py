"""StakeToken: stakes opened by one Merkle root, share claims by proof, O(1) revenue, claims and pushes."""

from __future__ import annotations

from eth_utils import keccak

from bcfl_core.merkle import stake_leaf_hash
from tests.contracts.solidity.helpers import ETH, STAKE_URI, TOTAL_SHARES, StakeTree, reverts, role

ZERO = b"\x00" * 32


def test_stake_leaf_matches_python(env, accounts):
    for holder, shares in [(accounts[1], 1), (accounts[2], TOTAL_SHARES), (accounts[3], 2**200)]:
        assert env.stake.functions.stakeLeaf(holder, shares).call() == stake_leaf_hash(holder, shares)


def test_open_stakes_once_with_reward(env, accounts):
    st = env.stake.functions
    tree = StakeTree([accounts[1], accounts[2]], [7000, 3000])
    receipt = env.open_stakes(1, tree, value=ETH)
    (ev,) = env.event(env.stake, "StakesOpened", receipt)
    assert dict(ev["args"]) == {"id": 1, "stakesRoot": tree.root, "reward": ETH}
    assert st.stakesRoot(1).call() == tree.root and st.stakesRoot(2).call() == ZERO
    assert st.totalDeposited(1).call() == ETH
    assert st.TOTAL_SHARES().call() == TOTAL_SHARES
    with reverts("StakeTokenAlreadyOpened", 1):
        st.openStakes(1, tree.root).transact({"from": env.platform})
    with reverts("StakeTokenZeroRoot"):
        st.openStakes(2, ZERO).transact({"from": env.platform})
    with reverts("AccessControlUnauthorizedAccount", accounts[1], role("STAKES_ROLE")):
        st.openStakes(2, tree.root).transact({"from": accounts[1]})
    env.open_stakes(2, tree)  # a zero reward is fine
    assert st.totalDeposited(2).call() == 0


def test_claim_shares_by_anyone_to_the_holder(env, accounts):
    st = env.stake.functions
    a, b, c = accounts[1:4]
    tree = StakeTree([a, b, c], [5000, 3000, 2000])
    env.open_stakes(1, tree)
    receipt = env.send(st.claimShares(*tree.claim_args(1, 1)), accounts[7])  # a third party sends it
    (ev,) = env.event(env.stake, "SharesClaimed", receipt)
    assert dict(ev["args"]) == {"id": 1, "holder": b, "shares": 3000}
    (tr,) = env.event(env.stake, "TransferSingle", receipt)
    assert (tr["args"]["from"], tr["args"]["to"], tr["args"]["value"]) == ("0x" + "0" * 40, b, 3000)
    assert st.balanceOf(b, 1).call() == 3000 and st.balanceOf(accounts[7], 1).call() == 0
    assert st.sharesClaimed(1, b).call() and not st.sharesClaimed(1, a).call()
    with reverts("StakeTokenSharesAlreadyClaimed", 1, b):
        st.claimShares(*tree.claim_args(1, 1)).transact({"from": b})


def test_claim_shares_rejects_bad_proofs_and_unopened(env, accounts):
    st = env.stake.functions
    a, b = accounts[1:3]
    tree = StakeTree([a, b], [6000, 4000])
    with reverts("StakeTokenNotOpened", 1):
        st.claimShares(*tree.claim_args(1, 0)).transact({"from": a})
    env.open_stakes(1, tree)
    with reverts("StakeTokenInvalidProof", 1, a, 6001):  # more shares than the leaf
        st.claimShares(1, a, 6001, tree.proof(0)).transact({"from": a})
    with reverts("StakeTokenInvalidProof", 1, accounts[3], 6000):  # no leaf (e.g. a malicious participant)
        st.claimShares(1, accounts[3], 6000, tree.proof(0)).transact({"from": accounts[3]})
    env.open_stakes(2, StakeTree([b], [TOTAL_SHARES]))
    with reverts("StakeTokenInvalidProof", 2, a, 6000):  # another id's root
        st.claimShares(2, a, 6000, tree.proof(0)).transact({"from": a})


def test_claim_shares_batch_skips_claimed_and_reverts_on_bad_proof(env, accounts):
    st = env.stake.functions
    holders = accounts[1:6]
    tree = StakeTree(holders, [4000, 3000, 1500, 1000, 500])
    env.open_stakes(1, tree)
    env.send(st.claimShares(*tree.claim_args(1, 2)))
    proofs = [tree.proof(i) for i in range(5)]
    assert st.claimSharesBatch(1, holders, tree.shares, proofs).call({"from": accounts[9]}) == 4
    receipt = env.send(st.claimSharesBatch(1, holders, tree.shares, proofs), accounts[9])
    assert [e["args"]["holder"] for e in env.event(env.stake, "SharesClaimed", receipt)] == [
        holders[i] for i in (0, 1, 3, 4)
    ]
    assert [st.balanceOf(h, 1).call() for h in holders] == tree.shares
    receipt = env.send(st.claimSharesBatch(1, holders, tree.shares, proofs))  # a retried batch is harmless
    assert env.event(env.stake, "SharesClaimed", receipt) == []
    with reverts("StakeTokenLengthMismatch", 2, 1, 2):
        st.claimSharesBatch(1, holders[:2], [1], proofs[:2]).transact({"from": env.platform})
    tree2 = StakeTree(holders[:2], [5000, 5000])
    env.open_stakes(2, tree2)
    with reverts("StakeTokenInvalidProof", 2, holders[1], 4999):
        st.claimSharesBatch(2, holders[:2], [5000, 4999], [tree2.proof(0), tree2.proof(1)]).transact(
            {"from": env.platform}
        )
    assert not st.sharesClaimed(2, holders[0]).call()  # the whole batch reverted


def test_revenue_before_claim_is_the_holders(env, accounts):
    a, b, payer = accounts[1], accounts[2], accounts[5]
    st = env.stake.functions
    tree = StakeTree([a, b], [7000, 3000])
    env.open_stakes(1, tree, value=ETH)
    receipt = env.send(st.depositRevenue(1), payer, value=ETH)
    (ev,) = env.event(env.stake, "RevenueDeposited", receipt)
    assert dict(ev["args"]) == {"id": 1, "from": payer, "amount": ETH}
    assert st.claimable(1, a).call() == 0  # not claimed yet: nothing claimable, but owed
    env.send(st.claimShares(*tree.claim_args(1, 0)))
    assert st.claimable(1, a).call() == 14 * ETH // 10
    env.send(st.depositRevenue(1), payer, value=ETH)
    env.send(st.claimShares(*tree.claim_args(1, 1)))
    assert st.claimable(1, a).call() == 21 * ETH // 10
    assert st.claimable(1, b).call() == 9 * ETH // 10
    assert st.totalDeposited(1).call() == 3 * ETH

    before = env.balance(a)
    receipt = env.send(st.claim(1), a)
    assert env.balance(a) - before + env.fee(receipt) == 21 * ETH // 10
    (ev,) = env.event(env.stake, "DividendClaimed", receipt)
    assert dict(ev["args"]) == {"id": 1, "account": a, "amount": 21 * ETH // 10}
    assert st.claimable(1, a).call() == 0 and st.withdrawn(1, a).call() == 21 * ETH // 10
    assert st.claim(1).call({"from": a}) == 0  # a second claim pays 0
    assert env.event(env.stake, "DividendClaimed", env.send(st.claim(1), a)) == []


def test_deposit_rejects_unopened_and_zero(env, accounts):
    with reverts("StakeTokenNotOpened", 3):
        env.stake.functions.depositRevenue(3).transact({"from": accounts[1], "value": 1})
    env.open_stakes(3, StakeTree([accounts[1]], [TOTAL_SHARES]))
    with reverts("StakeTokenZeroValue"):
        env.stake.functions.depositRevenue(3).transact({"from": accounts[1], "value": 0})


def test_transfer_keeps_earned_revenue_with_earner(env, accounts):
    a, b = accounts[1], accounts[2]
    st = env.stake.functions
    tree = StakeTree([a], [TOTAL_SHARES])
    env.open_stakes(1, tree)
    env.claim_all(1, tree)
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    env.send(st.safeTransferFrom(a, b, 1, 4000, b""), a)
    assert st.claimable(1, a).call() == ETH
    assert st.claimable(1, b).call() == 0
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    assert st.claimable(1, a).call() == ETH + 6 * ETH // 10
    assert st.claimable(1, b).call() == 4 * ETH // 10
    env.send(st.safeBatchTransferFrom(b, a, [1], [4000], b""), b)  # batch transfers too
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    assert st.claimable(1, a).call() == 2 * ETH + 6 * ETH // 10
    assert st.claimable(1, b).call() == 4 * ETH // 10


def test_transfer_to_unclaimed_holder_then_its_claim(env, accounts):
    """A holder who receives shares before claiming its own leaf gets both, revenue split exactly."""
    a, b = accounts[1], accounts[2]
    st = env.stake.functions
    tree = StakeTree([a, b], [6000, 4000])
    env.open_stakes(1, tree, value=10_000)
    env.send(st.claimShares(*tree.claim_args(1, 0)))
    env.send(st.safeTransferFrom(a, b, 1, 1000, b""), a)
    env.send(st.depositRevenue(1), accounts[5], value=10_000)
    assert (st.accumulated(1, a).call(), st.accumulated(1, b).call()) == (6000 + 5000, 1000)
    env.send(st.claimShares(*tree.claim_args(1, 1)))
    assert (st.accumulated(1, a).call(), st.accumulated(1, b).call()) == (11_000, 9000)
    assert st.balanceOf(b, 1).call() == 5000


def test_receive_and_allocate_unallocated(env, accounts):
    st = env.stake.functions
    assert st.uri(1).call() == STAKE_URI
    tx = env.w3.eth.send_transaction({"from": accounts[6], "to": env.stake.address, "value": 2 * ETH})
    receipt = env.w3.eth.wait_for_transaction_receipt(tx)
    (ev,) = env.event(env.stake, "RevenueReceived", receipt)
    assert dict(ev["args"]) == {"from": accounts[6], "amount": 2 * ETH}
    assert st.unallocatedRevenue().call() == 2 * ETH
    with reverts("StakeTokenNotOpened", 1):
        st.allocateRevenue(1, ETH).transact({"from": env.platform})
    tree = StakeTree([accounts[1], accounts[2]], [5000, 5000])
    env.open_stakes(1, tree)
    env.claim_all(1, tree)
    with reverts("StakeTokenInsufficientUnallocated", 3 * ETH, 2 * ETH):
        st.allocateRevenue(1, 3 * ETH).transact({"from": env.platform})
    with reverts("StakeTokenZeroValue"):
        st.allocateRevenue(1, 0).transact({"from": env.platform})
    with reverts("AccessControlUnauthorizedAccount", accounts[1], role("PAYOUT_ROLE")):
        st.allocateRevenue(1, ETH).transact({"from": accounts[1]})
    receipt = env.send(st.allocateRevenue(1, ETH))
    assert env.event(env.stake, "RevenueAllocated", receipt)[0]["args"]["amount"] == ETH
    assert st.unallocatedRevenue().call() == ETH
    assert st.claimable(1, accounts[1]).call() == ETH // 2


def test_push_payouts_skips_reverting_and_gas_burning_holders(env, accounts):
    st = env.stake.functions
    bad, burner = env.deploy("RevertingReceiver"), env.deploy("GasBurner")
    a, b = accounts[1], accounts[2]
    tree = StakeTree([a, bad.address, burner.address, b], [4000, 3000, 1000, 2000])
    env.open_stakes(1, tree)
    env.claim_all(1, tree)
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    before_a, before_b = env.balance(a), env.balance(b)
    receipt = env.send(st.pushPayouts(1, [a, bad.address, burner.address, b, accounts[9]]))
    assert env.balance(a) - before_a == 4 * ETH // 10
    assert env.balance(b) - before_b == ETH // 5
    pushed = [dict(e["args"]) for e in env.event(env.stake, "PayoutPushed", receipt)]
    failed = [dict(e["args"]) for e in env.event(env.stake, "PayoutFailed", receipt)]
    assert pushed == [
        {"id": 1, "account": a, "amount": 4 * ETH // 10},
        {"id": 1, "account": b, "amount": ETH // 5},
    ]
    assert failed == [
        {"id": 1, "account": bad.address, "amount": 3 * ETH // 10},
        {"id": 1, "account": burner.address, "amount": ETH // 10},
    ]
    assert st.claimable(1, bad.address).call() == 3 * ETH // 10
    assert st.claimable(1, a).call() == 0
    # once it accepts ETH, the skipped holder can claim its share
    env.send(bad.functions.setAccept(True))
    env.send(bad.functions.claim(env.stake.address, 1))
    assert env.balance(bad.address) == 3 * ETH // 10
    assert env.balance(env.stake.address) == ETH // 10  # the burner's, still claimable


def test_push_payouts_role_uri_and_interfaces(env, accounts):
    with reverts("AccessControlUnauthorizedAccount", accounts[1], role("PAYOUT_ROLE")):
        env.stake.functions.pushPayouts(1, [accounts[1]]).transact({"from": accounts[1]})
    receipt = env.send(env.stake.functions.setURI("ipfs://x/{id}"))
    assert env.event(env.stake, "URIUpdated", receipt)[0]["args"]["uri"] == "ipfs://x/{id}"
    assert env.stake.functions.uri(1).call() == "ipfs://x/{id}"
    with reverts("AccessControlUnauthorizedAccount", accounts[1], role("DEFAULT_ADMIN_ROLE")):
        env.stake.functions.setURI("y").transact({"from": accounts[1]})
    supports = env.stake.functions.supportsInterface
    for iface in ("01ffc9a7", "d9b67a26", "0e89341c", "7965db0b"):
        assert supports(bytes.fromhex(iface)).call(), iface
    assert keccak(text="STAKES_ROLE") == env.stake.functions.STAKES_ROLE().call()
