from __future__ import annotations

from tests.contracts.solidity.helpers import ETH, STAKE_URI, reverts, role

TOTAL = 10_000


def test_mint_shares_once_summing_to_total(env, accounts):
    a, b, c = accounts[1:4]
    receipt = env.mint_shares(1, [a, b, c, a], [5000, 3000, 1000, 1000])
    (ev,) = env.event(env.stake, "SharesMinted", receipt)
    assert dict(ev["args"]) == {"id": 1, "holders": 4, "totalShares": TOTAL}
    st = env.stake.functions
    assert [st.balanceOf(x, 1).call() for x in (a, b, c)] == [6000, 3000, 1000]
    assert st.sharesMinted(1).call() and not st.sharesMinted(2).call()
    assert st.TOTAL_SHARES().call() == TOTAL
    with reverts("StakeTokenAlreadyMinted", 1):
        st.mintShares(1, [a], [TOTAL]).transact({"from": env.platform})


def test_mint_shares_rejects_bad_input(env, accounts):
    st = env.stake.functions
    a, b = accounts[1:3]
    tx = {"from": env.platform}
    with reverts("StakeTokenLengthMismatch", 2, 1):
        st.mintShares(1, [a, b], [TOTAL]).transact(tx)
    with reverts("StakeTokenNoHolders"):
        st.mintShares(1, [], []).transact(tx)
    with reverts("StakeTokenInvalidTotal", 9_999, TOTAL):
        st.mintShares(1, [a, b], [5000, 4999]).transact(tx)
    with reverts("StakeTokenInvalidTotal", 10_001, TOTAL):
        st.mintShares(1, [a, b], [5000, 5001]).transact(tx)
    with reverts("AccessControlUnauthorizedAccount", a, role("MINTER_ROLE")):
        st.mintShares(1, [a], [TOTAL]).transact({"from": a})


def test_deposit_and_claim_pro_rata(env, accounts):
    a, b, payer = accounts[1], accounts[2], accounts[5]
    env.mint_shares(1, [a, b], [7000, 3000])
    receipt = env.send(env.stake.functions.depositRevenue(1), payer, value=ETH)
    (ev,) = env.event(env.stake, "RevenueDeposited", receipt)
    assert dict(ev["args"]) == {"id": 1, "from": payer, "amount": ETH}
    st = env.stake.functions
    assert st.claimable(1, a).call() == 7 * ETH // 10
    assert st.claimable(1, b).call() == 3 * ETH // 10
    assert st.totalDeposited(1).call() == ETH

    before = env.balance(a)
    receipt = env.send(st.claim(1), a)
    assert env.balance(a) - before + env.fee(receipt) == 7 * ETH // 10
    (ev,) = env.event(env.stake, "DividendClaimed", receipt)
    assert dict(ev["args"]) == {"id": 1, "account": a, "amount": 7 * ETH // 10}
    assert st.claimable(1, a).call() == 0
    assert st.withdrawn(1, a).call() == 7 * ETH // 10
    # a second claim is a no-op that pays 0
    assert st.claim(1).call({"from": a}) == 0
    receipt = env.send(st.claim(1), a)
    assert env.event(env.stake, "DividendClaimed", receipt) == []


def test_deposit_rejects_unminted_and_zero(env, accounts):
    with reverts("StakeTokenNotMinted", 3):
        env.stake.functions.depositRevenue(3).transact({"from": accounts[1], "value": 1})
    env.mint_shares(3, [accounts[1]], [TOTAL])
    with reverts("StakeTokenZeroValue"):
        env.stake.functions.depositRevenue(3).transact({"from": accounts[1], "value": 0})


def test_transfer_keeps_earned_revenue_with_earner(env, accounts):
    a, b = accounts[1], accounts[2]
    st = env.stake.functions
    env.mint_shares(1, [a], [TOTAL])
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    env.send(st.safeTransferFrom(a, b, 1, 4000, b""), a)
    assert st.claimable(1, a).call() == ETH
    assert st.claimable(1, b).call() == 0
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    assert st.claimable(1, a).call() == ETH + 6 * ETH // 10
    assert st.claimable(1, b).call() == 4 * ETH // 10
    # batch transfers too
    env.send(st.safeBatchTransferFrom(b, a, [1], [4000], b""), b)
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    assert st.claimable(1, a).call() == 2 * ETH + 6 * ETH // 10
    assert st.claimable(1, b).call() == 4 * ETH // 10


def test_receive_and_allocate_unallocated(env, accounts):
    st = env.stake.functions
    assert st.uri(1).call() == STAKE_URI
    tx = env.w3.eth.send_transaction({"from": accounts[6], "to": env.stake.address, "value": 2 * ETH})
    receipt = env.w3.eth.wait_for_transaction_receipt(tx)
    (ev,) = env.event(env.stake, "RevenueReceived", receipt)
    assert dict(ev["args"]) == {"from": accounts[6], "amount": 2 * ETH}
    assert st.unallocatedRevenue().call() == 2 * ETH
    with reverts("StakeTokenNotMinted", 1):
        st.allocateRevenue(1, ETH).transact({"from": env.platform})
    env.mint_shares(1, [accounts[1], accounts[2]], [5000, 5000])
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


def test_push_payouts_skips_reverting_holder(env, accounts):
    st = env.stake.functions
    bad = env.deploy("RevertingReceiver")
    a, b = accounts[1], accounts[2]
    env.mint_shares(1, [a, bad.address, b], [5000, 3000, 2000])
    env.send(st.depositRevenue(1), accounts[5], value=ETH)
    before_a, before_b = env.balance(a), env.balance(b)
    receipt = env.send(st.pushPayouts(1, [a, bad.address, b, accounts[9]]))
    assert env.balance(a) - before_a == ETH // 2
    assert env.balance(b) - before_b == ETH // 5
    pushed = [dict(e["args"]) for e in env.event(env.stake, "PayoutPushed", receipt)]
    failed = [dict(e["args"]) for e in env.event(env.stake, "PayoutFailed", receipt)]
    assert pushed == [
        {"id": 1, "account": a, "amount": ETH // 2},
        {"id": 1, "account": b, "amount": ETH // 5},
    ]
    assert failed == [{"id": 1, "account": bad.address, "amount": 3 * ETH // 10}]
    assert st.claimable(1, bad.address).call() == 3 * ETH // 10
    assert st.claimable(1, a).call() == 0
    # once it accepts ETH, the skipped holder can claim its share
    env.send(bad.functions.setAccept(True))
    env.send(bad.functions.claim(env.stake.address, 1))
    assert env.balance(bad.address) == 3 * ETH // 10
    assert env.balance(env.stake.address) == 0


def test_push_payouts_role_and_uri(env, accounts):
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
